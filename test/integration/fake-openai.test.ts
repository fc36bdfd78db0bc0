import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wavDurationS } from '../fake-openai/audio.ts';
import { FAKE_OPENAI_KEY, fakeTranscript, SEGMENT_S, startFakeOpenAI } from '../fake-openai/server.ts';
import type { FakeOpenAI, FaultSpec } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';

interface Form {
  file?: Buffer;
  filename?: string;
  model?: string;
  response_format?: string;
  language?: string;
  granularities?: string[];
}
interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

const fx = speechFixture();
const wav = readFileSync(fx.wav);
const mp3 = readFileSync(fx.mp3);

async function post(
  fake: FakeOpenAI,
  form: Form,
  key: string | null = FAKE_OPENAI_KEY,
  signal?: AbortSignal,
): Promise<Reply> {
  const fd = new FormData();
  if (form.file) fd.append('file', new Blob([form.file]), form.filename ?? 'audio.wav');
  for (const name of ['model', 'response_format', 'language'] as const) {
    const v = form[name];
    if (v !== undefined) fd.append(name, v);
  }
  for (const g of form.granularities ?? []) fd.append('timestamp_granularities[]', g);
  const res = await fetch(`${fake.url}/audio/transcriptions`, {
    method: 'POST',
    body: fd,
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    signal,
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const whisper = (file: Buffer = wav): Form => ({ file, model: 'whisper-1', response_format: 'verbose_json' });
const errorOf = (r: Reply) =>
  (JSON.parse(r.body) as { error: { message: string; type: string; param: string | null; code: string | null } }).error;

describe('startFakeOpenAI', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    fake.reset();
  });

  it("adds whisper's words to verbose_json when timestamp_granularities[] names them, and only then", async () => {
    const withWords = JSON.parse((await post(fake, { ...whisper(), granularities: ['word', 'segment'] })).body) as {
      words?: { word: string; start: number; end: number }[];
      language: string;
    };
    const segments = fakeTranscript(wav, fx.durationS).segments;
    expect(withWords.words).toEqual(segments.map((seg) => ({ word: seg.text, start: seg.start, end: seg.end })));
    expect(fake.requests[0]?.granularities).toEqual(['word', 'segment']);
    // No language asked: the one it "detects" (English unless the options say otherwise).
    expect(withWords.language).toBe('english');
    const plain = JSON.parse((await post(fake, whisper())).body) as { words?: unknown };
    expect(plain.words).toBeUndefined();
    const german = await startFakeOpenAI({ detectedLanguage: 'de' });
    try {
      expect((JSON.parse((await post(german, whisper())).body) as { language: string }).language).toBe('german');
    } finally {
      await german.close();
    }
  });

  it('answers verbose_json with sha1-tagged segments spread over the WAV duration', async () => {
    const r = await post(fake, { ...whisper(), language: 'de' });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as {
      text: string;
      language: string;
      duration: number;
      segments: { start: number; end: number; text: string }[];
    };
    const expected = fakeTranscript(wav, fx.durationS);
    expect(body.duration).toBeCloseTo(fx.durationS, 3);
    expect(body.language).toBe('german');
    expect(body.text).toBe(expected.text);
    expect(body.segments).toHaveLength(Math.ceil(fx.durationS / SEGMENT_S));
    expect(body.segments[0]?.start).toBe(0);
    expect(body.segments.at(-1)?.end).toBeCloseTo(fx.durationS, 3);
    expect(body.segments.map((s) => s.text.trim())).toEqual(expected.segments.map((s) => s.text));
    const [entry] = fake.requests;
    expect(entry?.sha1?.slice(0, 8)).toBe(expected.tag.slice('chunk-'.length));
    expect(entry).toMatchObject({
      status: 200,
      outcome: 'answered',
      bytes: wav.length,
      attempt: 0,
      fault: null,
      text: expected.text,
    });
  });

  it('reads the duration of non-WAV audio (an mp3: its frames counted) and answers json for gpt-4o models', async () => {
    const r = await post(fake, { file: mp3, filename: 'a.mp3', model: 'gpt-4o-mini-transcribe' });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as { text: string; usage: { type: string } };
    expect(fake.requests[0]?.durationS).toBeCloseTo(fx.durationS, 0);
    expect(body.text).toBe(fakeTranscript(mp3, fake.requests[0]?.durationS ?? 0).text);
    expect(body.usage.type).toBe('tokens');
  });

  it('answers text/plain for response_format text', async () => {
    const r = await post(fake, { file: wav, model: 'whisper-1', response_format: 'text' });
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.body).toBe(`${fakeTranscript(wav, fx.durationS).text}\n`);
  });

  it('counts attempts per file content across requests', async () => {
    await post(fake, whisper());
    await post(fake, whisper(mp3));
    await post(fake, whisper());
    expect(fake.requests.map((e) => e.attempt)).toEqual([0, 0, 1]);
  });

  it("answers 401 in OpenAI's error shape for a missing or wrong key, and any key after setKey(null)", async () => {
    const missing = await post(fake, whisper(), null);
    expect(missing.status).toBe(401);
    expect(errorOf(missing)).toMatchObject({ type: 'invalid_request_error', param: null, code: null });
    const wrong = await post(fake, whisper(), 'sk-wrong');
    expect(wrong.status).toBe(401);
    expect(errorOf(wrong).code).toBe('invalid_api_key');
    fake.setKey(null);
    expect((await post(fake, whisper(), 'sk-anything')).status).toBe(200);
  });

  it('answers 400 for an unknown model, a missing file and verbose_json on a gpt-4o model', async () => {
    const unknown = await post(fake, { file: wav, model: 'whisper-9' });
    expect(unknown.status).toBe(400);
    expect(errorOf(unknown)).toMatchObject({ param: 'model', code: 'invalid_value' });
    expect(errorOf(await post(fake, { model: 'whisper-1' })).param).toBe('file');
    const format = await post(fake, { file: wav, model: 'gpt-4o-transcribe', response_format: 'verbose_json' });
    expect(format.status).toBe(400);
    expect(errorOf(format)).toMatchObject({ param: 'response_format', code: 'unsupported_value' });
    const garbage = await post(fake, { file: Buffer.from('not audio at all'), model: 'whisper-1' });
    expect(garbage.status).toBe(400);
    expect(errorOf(garbage).message).toMatch(/corrupted or unsupported/);
  });

  it('answers 413 when the file part is over the cap, whether or not the body was parsed', async () => {
    const small = await startFakeOpenAI({ maxBytes: 1000 });
    try {
      const parsed = await post(small, whisper());
      expect(parsed.status).toBe(413);
      expect(errorOf(parsed).message).toMatch(/Maximum content size limit \(1000\) exceeded/);
      const drained = await post(small, whisper(Buffer.concat([wav, wav])));
      expect(drained.status).toBe(413);
      expect(small.requests.map((e) => e.fault)).toEqual([null, null]);
    } finally {
      await small.close();
    }
  });

  it('applies a scripted queue of faults in order, then answers normally', async () => {
    const script: FaultSpec[] = [
      'rate_limit',
      'quota',
      'auth',
      'forbidden',
      'bad_audio',
      'too_short',
      'too_large',
      { type: 'server_error', status: 500 },
      { type: 'server_error', status: 502 },
      { type: 'server_error', status: 503 },
      null,
    ];
    fake.script(script);
    const replies: Reply[] = [];
    for (let i = 0; i < script.length + 1; i++) replies.push(await post(fake, whisper()));
    expect(replies.map((r) => r.status)).toEqual([429, 429, 401, 403, 400, 400, 413, 500, 502, 503, 200, 200]);
    expect(errorOf(replies[0] as Reply).code).toBe('rate_limit_exceeded');
    expect(replies[0]?.headers.get('retry-after')).toBe('1');
    expect(replies[0]?.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(errorOf(replies[1] as Reply).code).toBe('insufficient_quota');
    expect(errorOf(replies[2] as Reply).code).toBe('invalid_api_key');
    expect(errorOf(replies[5] as Reply).message).toMatch(/too short/);
    expect(replies[8]?.headers.get('content-type')).toBe('text/html');
    expect(fake.requests.map((e) => e.fault)).toEqual([
      'rate_limit',
      'quota',
      'auth',
      'forbidden',
      'bad_audio',
      'too_short',
      'too_large',
      'server_error',
      'server_error',
      'server_error',
      null,
      null,
    ]);
  });

  it('adds the successHeaders of a 200 answer', async () => {
    const hinted = await startFakeOpenAI({
      successHeaders: (entry) =>
        entry.attempt === 0 ? { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s' } : undefined,
    });
    try {
      const first = await post(hinted, whisper());
      expect(first.status).toBe(200);
      expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(first.headers.get('x-ratelimit-reset-requests')).toBe('2s');
      const second = await post(hinted, whisper());
      expect(second.headers.get('x-ratelimit-remaining-requests')).toBeNull();
    } finally {
      await hinted.close();
    }
  });

  it('sends no Retry-After when a rate_limit fault says retryAfterS null', async () => {
    fake.script([{ type: 'rate_limit', retryAfterS: null }]);
    const r = await post(fake, whisper());
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBeNull();
  });

  it('asks a script function per request, with the request index and the log entry', async () => {
    const seen: number[] = [];
    fake.script((i, entry) => {
      seen.push(i);
      return entry.attempt === 0 ? { type: 'server_error', status: 503 } : null;
    });
    const statuses = [];
    for (const file of [wav, wav, mp3, mp3]) statuses.push((await post(fake, whisper(file))).status);
    expect(statuses).toEqual([503, 200, 503, 200]);
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('destroys the socket on drop and leaves the request unanswered on stall until the client leaves', async () => {
    fake.script(['drop', 'stall']);
    await expect(post(fake, whisper())).rejects.toThrow();
    await expect(post(fake, whisper(), FAKE_OPENAI_KEY, AbortSignal.timeout(300))).rejects.toThrow();
    expect(fake.requests.map((e) => [e.outcome, e.status])).toEqual([
      ['dropped', null],
      ['stalled', null],
    ]);
  });

  it('delays answers by the configured latency', async () => {
    fake.setLatency(10_000);
    await expect(post(fake, whisper(), FAKE_OPENAI_KEY, AbortSignal.timeout(300))).rejects.toThrow();
    await expect.poll(() => fake.requests[0]?.outcome).toBe('client_closed');
    expect(fake.requests[0]?.status).toBeNull();
  });

  it('does its own work (reading the duration) inside the latency with ownWorkInLatency, after it by default', async () => {
    for (const ownWorkInLatency of [false, true]) {
      // The gate runs once the latency is over: whether the duration was known by then.
      const knownAtGate: Array<number | null> = [];
      const timed = await startFakeOpenAI({
        latencyMs: 50,
        ownWorkInLatency,
        gate: (entry) => {
          knownAtGate.push(entry.durationS);
          return Promise.resolve();
        },
      });
      try {
        const r = await post(timed, { ...whisper(mp3), filename: 'a.mp3' });
        expect(r.status).toBe(200);
        const [entry] = timed.requests;
        expect(entry?.durationS).toBeCloseTo(fx.durationS, 0);
        expect(knownAtGate).toEqual([ownWorkInLatency ? entry?.durationS : null]);
        // Never before the latency, counted from the body read.
        expect((entry?.answeredAt ?? 0) - (entry?.receivedAt ?? 0)).toBeGreaterThanOrEqual(50);
      } finally {
        await timed.close();
      }
    }
  });

  it('draws the same random faults for the same seed, none at probability 0 and always at 1', async () => {
    const run = async (probability: number): Promise<(string | null)[]> => {
      fake.reset();
      fake.setRandom({ seed: 42, probability, faults: ['rate_limit', 'quota', { type: 'server_error', status: 500 }] });
      for (let i = 0; i < 8; i++) await post(fake, whisper());
      return fake.requests.map((e) => e.fault);
    };
    const first = await run(0.5);
    expect(first.some((f) => f !== null)).toBe(true);
    expect(first.some((f) => f === null)).toBe(true);
    expect(await run(0.5)).toEqual(first);
    expect((await run(0)).every((f) => f === null)).toBe(true);
    expect((await run(1)).every((f) => f !== null)).toBe(true);
  });

  it('lists the models, and can script faults on the models route', async () => {
    const ok = await fetch(`${fake.url}/models`, { headers: { authorization: `Bearer ${FAKE_OPENAI_KEY}` } });
    const body = (await ok.json()) as { data: { id: string }[] };
    expect(body.data.map((m) => m.id)).toEqual(['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe']);
    fake.script(['forbidden'], 'models');
    const denied = await fetch(`${fake.url}/models`, { headers: { authorization: `Bearer ${FAKE_OPENAI_KEY}` } });
    expect(denied.status).toBe(403);
  });

  it('empties the log and restores the key on reset', async () => {
    fake.setKey('sk-other');
    await post(fake, whisper());
    const log = fake.requests;
    fake.reset();
    expect(log).toHaveLength(0);
    expect((await post(fake, whisper())).status).toBe(200);
  });

  it('closes even while a request is stalled', async () => {
    const own = await startFakeOpenAI({ faults: ['stall'] });
    const pending = post(own, whisper()).catch((e: unknown) => e);
    await expect.poll(() => own.requests[0]?.outcome).toBe('stalled');
    await own.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe('wavDurationS', () => {
  it('reads data size over byte rate, and the bytes present when the size field is a streaming placeholder', () => {
    expect(wavDurationS(wav)).toBeCloseTo(fx.durationS, 3);
    const streamed = Buffer.from(wav);
    const dataAt = streamed.indexOf('data');
    streamed.writeUInt32LE(0xffffffff, dataAt + 4);
    expect(wavDurationS(streamed)).toBeCloseTo(fx.durationS, 3);
    expect(wavDurationS(mp3)).toBeNull();
  });
});
