import { createReadStream } from 'node:fs';
import http from 'node:http';
import { constants, gunzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import OpenAI, { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, waitForJob, type JobJson, type TestServer } from '../helper.ts';
import { until } from '../support/until.ts';

const KEY = 'facade-client-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

interface TranscriptJson {
  text: string;
  duration_s: number;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
}

describe('the OpenAI audio API, called with the official openai client', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let client: OpenAI;
  const speech = speechFixture();
  /** While true, every transcription request after the first is answered 429 (Retry-After 1 s): the job waits. */
  let hold = false;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 10 });
    server = await startServer({
      API_KEYS: KEY,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      // One chunk at a time: the first chunk is final while the held ones wait.
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
      RATE_LIMIT_BURST: '50',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '40',
      CHUNK_MAX_ATTEMPTS: '50',
      EVENT_POLL_MS: '20',
      EVENT_HEARTBEAT_S: '1',
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterEach(() => {
    hold = false;
    fake.reset();
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
  });

  /** The first transcription request is answered; the next ones get 429 until `hold` is false again. */
  function holdAfterFirstChunk(): void {
    hold = true;
    fake.script((i) => (hold && i >= 1 ? { type: 'rate_limit', retryAfterS: 1 } : undefined));
  }

  /** POSTs the speech as a form with node:http (no decoding), collecting the raw body as it comes. */
  async function rawPost(fields: Record<string, string>) {
    const form = new FormData();
    form.append('file', new Blob([await readFile(speech.wav)]), 'speech.wav');
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const encoded = new Request('http://x.invalid/', { method: 'POST', body: form });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${server.url}/v1/audio/transcriptions`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': encoded.headers.get('content-type')!, 'accept-encoding': 'gzip' },
      });
      req.on('response', resolve).on('error', reject);
      void encoded.arrayBuffer().then((body) => req.end(Buffer.from(body)));
    });
    const raw: Buffer[] = [];
    res.on('data', (chunk: Buffer) => raw.push(chunk));
    // 'complete' says whether the body came to its end or was cut.
    const ended = new Promise<boolean>((resolve) => res.on('close', () => resolve(res.complete)));
    return { res, raw, ended };
  }

  async function transcriptOf(id: string, format: 'json' | 'srt' | 'vtt' = 'json') {
    const res = await fetch(`${server.url}/v1/jobs/${id}/transcript?format=${format}`, { headers: AUTH });
    expect(res.status).toBe(200);
    return res.text();
  }

  it('json: a normal multi-chunk job, answered with {text, usage} and its id in x-job-id', async () => {
    const { data, response } = await client.audio.transcriptions
      .create({ file: createReadStream(speech.mp3), model: 'whisper-1' })
      .withResponse();
    expect(response.headers.get('content-type')).toBe('application/json');
    const id = response.headers.get('x-job-id')!;
    const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, AUTH)).body;
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_total).toBeGreaterThanOrEqual(6);
    const transcript = JSON.parse(await transcriptOf(id)) as TranscriptJson;
    expect({ ...data }).toEqual({
      text: transcript.text,
      usage: { type: 'duration', seconds: Math.ceil(speech.durationS) },
    });
    expect(transcript.text).toMatch(/^chunk-[0-9a-f]{8}-0 /);
    // A job like any other: listed for its key.
    const listed = await getJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/jobs`, AUTH);
    expect(listed.body.items.map((j) => j.id)).toContain(id);
  });

  it.each(['text', 'srt', 'vtt'] as const)(
    '%s: the body as a string, text/plain as OpenAI sends it',
    async (format) => {
      const file = await toFile(await readFile(speech.wav), 'speech.wav');
      const { data, response } = await client.audio.transcriptions
        .create({ file, model: 'whisper-1', response_format: format })
        .withResponse();
      expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      const id = response.headers.get('x-job-id')!;
      const transcript = JSON.parse(await transcriptOf(id)) as TranscriptJson;
      if (format === 'text') expect(data).toBe(`${transcript.text}\n`);
      else expect(data).toBe(await transcriptOf(id, format));
      if (format === 'vtt') expect(data.startsWith('WEBVTT\n')).toBe(true);
    },
  );

  it('verbose_json: task, language name, duration, segments at absolute times; words[] when asked', async () => {
    const plain = await client.audio.transcriptions.create({
      file: createReadStream(speech.mp3),
      model: 'whisper-1',
      response_format: 'verbose_json',
      temperature: 0.2,
    });
    expect(plain).toMatchObject({ task: 'transcribe', language: 'english', text: expect.any(String) });
    expect(plain.duration).toBeCloseTo(speech.durationS, 0);
    expect(plain.words).toBeUndefined();
    const segments = plain.segments!;
    expect(segments.map((s) => s.id)).toEqual(segments.map((_, i) => i));
    expect(segments[0]).toMatchObject({ seek: 0, tokens: [], temperature: 0.2, avg_logprob: 0, no_speech_prob: 0 });
    expect(segments.at(-1)!.end).toBeGreaterThan(speech.durationS - 5);
    expect(segments.map((s) => s.text.trim()).join(' ')).toBe(plain.text);

    const worded = await client.audio.transcriptions.create({
      file: createReadStream(speech.mp3),
      model: 'whisper-1',
      response_format: 'verbose_json',
      timestamp_granularities: ['word', 'segment'],
    });
    const words = worded.words!;
    expect(words.map((w) => w.word).join(' ')).toBe(worded.text);
    for (let i = 1; i < words.length; i++) expect(words[i]!.start).toBeGreaterThanOrEqual(words[i - 1]!.start);
    expect(words.at(-1)!.end).toBeGreaterThan(speech.durationS - 5);
    const asked = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(asked.every((r) => r.responseFormat === 'verbose_json')).toBe(true);
  });

  it('stream: one delta per chunk in order, the first while the job still runs, then done with the text', async () => {
    holdAfterFirstChunk();
    const { data: stream, response } = await client.audio.transcriptions
      .create({ file: createReadStream(speech.mp3), model: 'whisper-1', stream: true })
      .withResponse();
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const id = response.headers.get('x-job-id')!;
    const deltas: string[] = [];
    let done: string | null = null;
    for await (const event of stream) {
      if (event.type === 'transcript.text.delta') {
        if (deltas.length === 0) {
          // Text arrives before the file ends: the other chunks are still held.
          const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, AUTH)).body;
          expect(job.status).toBe('processing');
          expect(job.progress.chunks_done).toBe(1);
          hold = false;
        }
        deltas.push(event.delta);
      } else if (event.type === 'transcript.text.done') done = event.text;
    }
    const transcript = JSON.parse(await transcriptOf(id)) as TranscriptJson;
    const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, AUTH)).body;
    expect(deltas).toHaveLength(job.progress.chunks_total);
    expect(done).toBe(transcript.text);
    expect(deltas.join('')).toBe(transcript.text);
    expect(deltas.map((d) => /chunk-([0-9a-f]{8})/.exec(d)?.[1])).toEqual([
      ...new Set(transcript.segments.map((s) => /chunk-([0-9a-f]{8})/.exec(s.text)?.[1])),
    ]);
  });

  it('keeps a json answer alive with leading spaces, and the SDK result is still exact', async () => {
    holdAfterFirstChunk();
    const form = new FormData();
    form.append('file', new Blob([await readFile(speech.wav)]), 'speech.wav');
    form.append('model', 'whisper-1');
    const res = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form, headers: AUTH });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let body = '';
    const decoder = new TextDecoder();
    // The job is held until a keep-alive byte has arrived.
    await until(async () => {
      const { value } = await reader.read();
      body += decoder.decode(value);
      return body.length > 0;
    }, 'a keep-alive byte before the job ends');
    expect(body.trim()).toBe('');
    hold = false;
    for (let r = await reader.read(); !r.done; r = await reader.read()) body += decoder.decode(r.value);
    expect(body).toMatch(/^ +\{"text":/);
    const transcript = JSON.parse(await transcriptOf(res.headers.get('x-job-id')!)) as TranscriptJson;
    expect(JSON.parse(body)).toEqual({ text: transcript.text, usage: expect.any(Object) });
  });

  it('keeps a text answer alive with empty gzip blocks, and the text stays byte for byte', async () => {
    holdAfterFirstChunk();
    const { res, raw, ended } = await rawPost({ response_format: 'text' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    // Held until wire bytes have come that decode to nothing.
    await until(() => raw.length > 0, 'a keep-alive flush before the job ends');
    expect(gunzipSync(Buffer.concat(raw), { finishFlush: constants.Z_SYNC_FLUSH }).length).toBe(0);
    hold = false;
    expect(await ended).toBe(true);
    const transcript = JSON.parse(await transcriptOf(String(res.headers['x-job-id']))) as TranscriptJson;
    expect(gunzipSync(Buffer.concat(raw)).toString('utf8')).toBe(`${transcript.text}\n`);
  });

  it('a client that goes away leaves the job running; it completes and is listed under its x-job-id', async () => {
    holdAfterFirstChunk();
    const abort = new AbortController();
    const response = await client.audio.transcriptions
      .create({ file: createReadStream(speech.mp3), model: 'whisper-1' }, { signal: abort.signal })
      .asResponse();
    const id = response.headers.get('x-job-id')!;
    expect(id).toMatch(/^job_/);
    abort.abort();
    await expect(response.text()).rejects.toThrow();
    expect((await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, AUTH)).body.status).not.toBe('completed');
    hold = false;
    const job = await waitForJob(server.url, id, AUTH);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_failed).toBe(0);
  });

  it('a job that fails after the headers: the error object in the body, the body cut, the job failed', async () => {
    // Undecodable chunks fail (after one re-encode), and the job with them: nothing global like a bad key.
    fake.script((i) => (i >= 1 ? 'bad_audio' : undefined));
    const { res, raw, ended } = await rawPost({ response_format: 'text' });
    expect(res.statusCode).toBe(200);
    const id = String(res.headers['x-job-id']);
    expect(await ended, 'the body is cut before its end').toBe(false);
    const body = gunzipSync(Buffer.concat(raw), { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
    const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, AUTH)).body;
    expect(job.status).toBe('failed');
    expect(JSON.parse(body)).toEqual({
      error: {
        code: job.error!.code.toLowerCase(),
        message: job.error!.message,
        param: null,
        type: expect.any(String),
      },
    });
    // Through the SDK the same is a failed call, not a transcript.
    await expect(
      client.audio.transcriptions.create({
        file: await toFile(await readFile(speech.wav), 'b.wav'),
        model: 'whisper-1',
      }),
    ).rejects.toThrow();
  });

  it('a repeated Idempotency-Key header answers the same job, in the form asked', async () => {
    const file = async () => toFile(await readFile(speech.wav), 'speech.wav');
    // The openai SDK sends no Idempotency-Key of its own; a caller adds one as a header.
    const opts = { headers: { 'Idempotency-Key': 'facade-retry-1' } };
    const params = { model: 'whisper-1', response_format: 'srt' } as const;
    const first = await client.audio.transcriptions.create({ file: await file(), ...params }, opts).withResponse();
    const again = await client.audio.transcriptions.create({ file: await file(), ...params }, opts).withResponse();
    expect(again.response.headers.get('x-job-id')).toBe(first.response.headers.get('x-job-id'));
    expect(again.data).toBe(first.data);
    expect(first.data).toMatch(/^1\n00:00:00,000 --> /);
    // The same form on the translations route is another request.
    const other = await client.audio.translations
      .create({ file: await file(), ...params }, opts)
      .catch((err: unknown) => err);
    expect(other).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
  });

  it('stream: a job that fails ends the stream with an error event, which the iterator throws', async () => {
    fake.script((i) => (i >= 1 ? 'bad_audio' : undefined));
    const { data: stream, response } = await client.audio.transcriptions
      .create({ file: await toFile(await readFile(speech.wav), 'speech.wav'), model: 'whisper-1', stream: true })
      .withResponse();
    const events: string[] = [];
    const thrown = await (async () => {
      for await (const event of stream) events.push(event.type);
    })().catch((err: unknown) => err);
    const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${response.headers.get('x-job-id')}`, AUTH)).body;
    expect(job.status).toBe('failed');
    expect(thrown).toBeInstanceOf(OpenAI.APIError);
    expect(thrown).toMatchObject({
      code: job.error!.code.toLowerCase(),
      message: expect.stringContaining(job.error!.message),
    });
    expect(events).not.toContain('transcript.text.done');
  });

  it('translations: whisper-1 through the translations endpoint; a model that cannot is a 400 in OpenAI shape', async () => {
    const { data, response } = await client.audio.translations
      .create({ file: createReadStream(speech.mp3), model: 'whisper-1', response_format: 'verbose_json' })
      .withResponse();
    expect(data).toMatchObject({ task: 'translate', language: 'english' });
    expect(data.text).toMatch(/^en-chunk-/);
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/translations');
    const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${response.headers.get('x-job-id')}`, AUTH)).body;
    expect(sent).toHaveLength(job.progress.chunks_total);
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toHaveLength(0);

    const refused = await client.audio.translations
      .create({ file: createReadStream(speech.mp3), model: 'gpt-4o-transcribe' })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused).toMatchObject({ status: 400, param: 'model', code: 'invalid_field' });
  });

  it('models: list and retrieve; an unknown id is a 404 in OpenAI shape', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids[0]).toBe(server.config.model);
    expect(ids).toEqual(expect.arrayContaining(['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe']));
    expect(await client.models.retrieve('whisper-1')).toMatchObject({
      id: 'whisper-1',
      object: 'model',
      owned_by: 'chunkscribe',
      translation: true,
      word_timestamps: true,
    });
    const missing = await client.models.retrieve('no-such-model').catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'model_not_found', type: 'invalid_request_error' });
    // Self-hosted model ids have a slash (Systran/faster-whisper-large-v3): the SDK sends it as %2F, one segment.
    const slashed = await client.models.retrieve('Systran/no-such-model').catch((err: unknown) => err);
    expect(slashed).toMatchObject({ status: 404, code: 'model_not_found' });
    expect((slashed as Error).message).toContain('"Systran/no-such-model"');
  });

  it('describes the routes in the served OpenAPI document', async () => {
    type Op = {
      requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
      responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }>;
    };
    const doc = (await getJson<{ paths: Record<string, Record<string, Op>> }>(`${server.url}/docs/json`)).body;
    const create = doc.paths['/v1/audio/transcriptions']!.post!;
    expect(Object.keys(create.requestBody!.content)).toEqual(['multipart/form-data']);
    expect(Object.keys(create.requestBody!.content['multipart/form-data']!.schema.properties)).toEqual(
      expect.arrayContaining(['file', 'model', 'response_format', 'timestamp_granularities[]', 'stream']),
    );
    expect(Object.keys(create.responses['200']!.content!)).toEqual([
      'application/json',
      'text/plain',
      'text/event-stream',
    ]);
    const error = create.responses['400']!.content!['application/json']!.schema;
    expect(Object.keys((error.properties!.error as { properties: object }).properties)).toEqual([
      'message',
      'type',
      'param',
      'code',
    ]);
    expect(doc.paths['/v1/audio/translations']?.post).toBeDefined();
    expect(doc.paths['/v1/models']?.get).toBeDefined();
    expect(doc.paths['/v1/models/{id}']?.get).toBeDefined();
  });
});
