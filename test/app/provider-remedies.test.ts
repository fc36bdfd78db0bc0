import { describe, expect, it } from 'vitest';
import { fakeTranscript, type RequestLogEntry } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, pollJob, upload, waitForJob, type JobJson, type TestServer } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

interface TranscriptJson {
  text: string;
  duration_s: number;
  timing?: string;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
}

const speech = speechFixture();
/** A chunk file as the slicer wrote it (the WAV upload's chunks are stream copies: `chunk-00001.wav`). */
const isChunkFile = (r: RequestLogEntry) => /^chunk-\d+\.wav$/.test(r.filename ?? '');
const tagOf = (r: RequestLogEntry) => `chunk-${r.sha1!.slice(0, 8)}`;

/** Jobs whose chunks the provider refuses as they are: re-encoded, split, or given up, over real HTTP and ffmpeg. */
describe('chunks the provider refuses as they are', () => {
  const start = useFakeProviderService({ CHUNK_SECONDS: '10', RATE_LIMIT_BURST: '50', RETRY_BASE_DELAY_MS: '5' });

  async function transcript(s: TestServer, id: string): Promise<TranscriptJson> {
    return (await getJson<TranscriptJson>(`${s.url}/v1/jobs/${id}/transcript`)).body;
  }

  it('re-encodes a chunk answered 400 (undecodable) once and puts its words at its times', async () => {
    let victim: string | null = null;
    const { fake, server } = await start({
      faults: (_, entry) => {
        // The second chunk file the service sends is "corrupt" however often it comes back.
        if (!isChunkFile(entry)) return null;
        if (victim === null && entry.filename !== 'chunk-00000.wav') victim = entry.filename;
        return entry.filename === victim ? 'bad_audio' : null;
      },
    });
    const created = await upload(server.url, speech.wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_failed).toBe(0);

    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const refused = sent.filter((r) => r.status === 400);
    expect(refused.map((r) => r.filename)).toEqual([victim]);
    const reencoded = sent.filter((r) => r.filename === `${victim}.reencoded.flac`);
    expect(reencoded).toHaveLength(1);
    expect(reencoded[0]).toMatchObject({ status: 200 });

    const t = await transcript(server, job.id);
    const chunkIndex = Number(/chunk-(\d+)/.exec(victim!)![1]);
    const its = t.segments.filter((s) => s.chunk === chunkIndex);
    expect(its.length).toBeGreaterThan(0);
    expect(its.every((s) => s.text.startsWith(tagOf(reencoded[0]!)))).toBe(true);
    // The chunk's words sit between its neighbours' words.
    const before = t.segments.filter((s) => s.chunk < chunkIndex).at(-1)!;
    const after = t.segments.find((s) => s.chunk > chunkIndex);
    expect(its[0]!.start).toBeGreaterThanOrEqual(before.end);
    if (after) expect(its.at(-1)!.end).toBeLessThanOrEqual(after.start);
    expect(await jobFiles(server.dataDir)).not.toContainEqual(expect.stringContaining('reencoded'));
  });

  it('marks a chunk failed when its re-encoded bytes are refused too, and completes the job with a gap', async () => {
    const { fake, server } = await start(
      { faults: (_, entry) => (/^chunk-00001\.wav/.test(entry.filename ?? '') ? 'bad_audio' : null) },
      { MAX_FAILED_CHUNK_RATIO: '0.5' },
    );
    const created = await upload(server.url, speech.wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_failed).toBe(1);
    const chunk1 = fake.requests.filter((r) => /^chunk-00001\.wav/.test(r.filename ?? ''));
    expect(chunk1.map((r) => [r.filename, r.status])).toEqual([
      ['chunk-00001.wav', 400],
      ['chunk-00001.wav.reencoded.flac', 400],
    ]);
    const t = await transcript(server, job.id);
    expect(t.segments.filter((s) => s.chunk === 1).map((s) => s.text)).toEqual(['[inaudible: chunk 1 failed]']);
  });

  it('splits a chunk answered 413 and places each piece at its offset in the chunk', async () => {
    // 10 s of 16 kHz 16-bit mono WAV is 320 kB: whole chunks are too large, their halves are not.
    const { fake, server } = await start({ maxBytes: 250_000 });
    const created = await upload(server.url, speech.wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_failed).toBe(0);

    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const tooLarge = sent.filter((r) => r.status === 413);
    expect(tooLarge.length).toBeGreaterThan(0);
    const t = await transcript(server, job.id);
    for (const whole of tooLarge) {
      const name = whole.filename!;
      const index = Number(/chunk-(\d+)/.exec(name)![1]);
      const [p0, p1] = [0, 1].map((i) => sent.find((r) => r.filename === `${name}.part${i}.wav` && r.status === 200)!);
      expect(p0).toBeDefined();
      expect(p1).toBeDefined();
      const segs = t.segments.filter((s) => s.chunk === index);
      const first = segs.filter((s) => s.text.startsWith(tagOf(p0!)));
      const second = segs.filter((s) => s.text.startsWith(tagOf(p1!)));
      expect(first.length + second.length).toBe(segs.length);
      expect(second.length).toBeGreaterThan(0);
      // The second piece starts where the first one ends (the pieces' own lengths, as the fake measured them).
      expect(Math.abs(second[0]!.start - (first[0]!.start + p0!.durationS!))).toBeLessThan(0.15);
      expect(second.at(-1)!.end).toBeLessThanOrEqual(t.duration_s);
    }
    // Every chunk is in the transcript exactly once: by its own answer or by its pieces'.
    const chunks = new Set(t.segments.map((s) => s.chunk));
    expect(chunks.size).toBe(job.progress.chunks_total);
    expect(await jobFiles(server.dataDir)).not.toContainEqual(expect.stringContaining('.part'));
  });
});

describe('the hallucination guard at another split', () => {
  const start = useFakeProviderService();

  it('sends a chunk that loops with and without prompt again in two pieces, and keeps the pieces', async () => {
    let looping: string | null = null;
    const { fake, server } = await start(
      {
        transcript: ({ sha1, durationS }) => {
          const sane = fakeTranscript(sha1, durationS);
          // One chunk (whatever bytes the first request carried) loops however it is asked.
          looping ??= sha1;
          if (sha1 !== looping) return sane;
          const loop = 'thank you '.repeat(20).trim();
          return { ...sane, text: loop, segments: [{ ...sane.segments[0]!, text: loop }] };
        },
      },
      {
        CHUNK_SECONDS: '10',
        TRANSCRIBE_CONCURRENCY: '1',
      },
    );
    const created = await upload(server.url, speech.wav, { prompt: 'A reading of Sense and Sensibility.' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.slice(0, 4).map((r) => [r.filename, r.prompt !== null])).toEqual([
      ['chunk-00000.wav', true],
      ['chunk-00000.wav', false],
      ['chunk-00000.wav.part0.wav', false],
      ['chunk-00000.wav.part1.wav', false],
    ]);
    const t = (await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`)).body;
    expect(t.text).not.toContain('thank you');
    expect(t.segments.filter((s) => s.chunk === 0).map((s) => s.text.slice(0, 14))).toEqual(
      expect.arrayContaining([tagOf(sent[2]!), tagOf(sent[3]!)]),
    );
  });
});

describe('context=sequential', () => {
  const start = useFakeProviderService();

  it("sends each chunk after the previous one, with the previous chunk's text at the end of its prompt", async () => {
    const { fake, server } = await start(
      { latencyMs: 50 },
      {
        CHUNK_SECONDS: '5',
        TRANSCRIBE_CONCURRENCY: '4',
      },
    );
    const created = await upload(server.url, speech.wav, { context: 'sequential', prompt: 'Sense and Sensibility.' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.length).toBe(job.progress.chunks_total);
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(sent.map((r) => r.filename)).toEqual(sent.map((_, i) => `chunk-${String(i).padStart(5, '0')}.wav`));
    expect(sent.every((r) => r.inFlight === 0)).toBe(true);
    expect(sent[0]!.prompt).toBe('Sense and Sensibility.');
    for (let i = 1; i < sent.length; i++) {
      expect(sent[i]!.prompt!.startsWith('Sense and Sensibility. ')).toBe(true);
      expect(sent[i]!.prompt!.endsWith(sent[i - 1]!.text!)).toBe(true);
    }
  });

  it('keeps the job concurrency without it', async () => {
    const { fake, server } = await start(
      { latencyMs: 300 },
      {
        CHUNK_SECONDS: '5',
        TRANSCRIBE_CONCURRENCY: '4',
      },
    );
    const created = await upload(server.url, speech.wav, { prompt: 'Sense and Sensibility.' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(Math.max(...sent.map((r) => r.inFlight))).toBeGreaterThan(0);
    expect(sent.every((r) => r.prompt === 'Sense and Sensibility.')).toBe(true);
  });
});

describe('waiting for the provider', () => {
  const start = useFakeProviderService();

  it('shows a job held by the open circuit as processing/transcribing with the reason, then completes it', async () => {
    let failing = true;
    const { server } = await start(
      { faults: () => (failing ? { type: 'server_error', status: 503 } : null) },
      {
        CHUNK_SECONDS: '10',
        TRANSCRIBE_CONCURRENCY: '2',
        RETRY_BASE_DELAY_MS: '5',
        RETRY_MAX_DELAY_MS: '20',
        CHUNK_MAX_ATTEMPTS: '20',
        CIRCUIT_FAILURE_THRESHOLD: '3',
        CIRCUIT_COOL_DOWN_MS: '400',
      },
    );
    const created = await upload(server.url, speech.wav);
    type Waiting = JobJson & { progress: { waiting?: { reason: string; until: string | null } | null } };
    const job = await pollJob<Waiting>(
      server.url,
      created.body.id,
      (j) => !!j.progress.waiting || (j.status !== 'processing' && j.status !== 'queued'),
      'the job to wait for the provider',
      {
        everyMs: 20,
      },
    );
    expect(job.status).toBe('processing');
    expect(job.stage).toBe('transcribing');
    expect(job.progress.waiting?.reason).toBe('provider_circuit_open');
    expect(Date.parse(job.progress.waiting!.until!)).toBeGreaterThan(Date.parse(String(job.created_at)));
    failing = false;
    const done = await waitForJob(server.url, created.body.id);
    expect(done.status).toBe('completed');
    expect(done.progress.chunks_failed).toBe(0);
    expect((done.progress as { waiting?: unknown }).waiting).toBeNull();
  });

  it('shows a chunk between attempts with its attempt count, next try time and last error', async () => {
    const { fake, server } = await start(
      { faults: [{ type: 'rate_limit', retryAfterS: 2 }] },
      {
        CHUNK_SECONDS: '10',
        TRANSCRIBE_CONCURRENCY: '1',
      },
    );
    const created = await upload(server.url, speech.wav);
    type Retrying = { chunk: number; attempts: number; next_try_at: string | null; reason: string | null };
    type Progress = JobJson & { progress: { retrying: Retrying[]; chunks_pending: number; chunks_sending: number } };
    const job = await pollJob<Progress>(
      server.url,
      created.body.id,
      (j) => j.progress.retrying.length > 0 || (j.status !== 'processing' && j.status !== 'queued'),
      'a chunk between attempts',
      {
        everyMs: 20,
      },
    );
    expect(job.progress.retrying).toEqual([
      { chunk: 0, attempts: 1, next_try_at: expect.any(String), reason: 'rate_limit_exceeded' },
    ]);
    const rateLimited = fake.requests.find((r) => r.status === 429)!;
    // Retry-After 2 s from the 429: the next try is at least that far from when the request went out.
    expect(Date.parse(job.progress.retrying[0]!.next_try_at!) - rateLimited.time).toBeGreaterThanOrEqual(1900);
    expect(job.progress.chunks_pending).toBe(job.progress.chunks_total - 1);
    expect(job.progress.chunks_sending).toBe(0);
    const done = await waitForJob(server.url, created.body.id);
    expect(done.status).toBe('completed');
    expect((done.progress as { retrying?: unknown }).retrying).toEqual([]);
  });

  it('holds the shared bucket after a 200 that says no request is left, until the reset it names', async () => {
    let answered = 0;
    const { fake, server } = await start(
      {
        successHeaders: () =>
          answered++ === 0 ? { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' } : undefined,
      },
      {
        CHUNK_SECONDS: '10',
        TRANSCRIBE_CONCURRENCY: '1',
      },
    );
    const created = await upload(server.url, speech.wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.every((r) => r.status === 200)).toBe(true);
    // The first answer said "none left, reset in 1 s": the next request waited that long, with no 429 needed.
    expect(sent[1]!.time - sent[0]!.time).toBeGreaterThanOrEqual(1000);
  });
});
