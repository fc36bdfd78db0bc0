import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FAKE_OPENAI_KEY,
  fakeTranscript,
  startFakeOpenAI,
  type FakeOpenAI,
  type FakeTranscript,
} from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  pollJob,
  removeDir,
  startServer,
  upload,
  waitForJob,
  type JobJson,
  type TestServer,
} from '../helper.ts';
import { parsePromText, sumOf } from '../support/prom-text.ts';
import { until } from '../support/until.ts';

const SPEACHES_MODEL = 'Systran/faster-whisper-large-v3';
const speech = speechFixture();

interface Limits {
  rate_limit?: { rpm: number; burst: number };
  max_in_flight?: number;
  circuit?: { failure_threshold: number; cool_down_ms: number };
}

/** Two backends: "openai" (the fake as OpenAI, whisper-1) and a speaches-style server with segments and words. */
function backendsJson(openai: FakeOpenAI, speaches: FakeOpenAI, speachesLimits: Limits = {}): string {
  return JSON.stringify({
    default_model: 'whisper-1',
    backends: [
      {
        name: 'openai',
        engine: 'openai',
        base_url: openai.url,
        api_key_env: 'TEST_OPENAI_KEY',
        models: [{ id: 'whisper-1', words: false }],
      },
      {
        name: 'speaches',
        engine: 'openai',
        base_url: speaches.url,
        ...speachesLimits,
        models: [
          {
            id: SPEACHES_MODEL,
            segments: true,
            words: true,
            max_bytes: 100 * 1024 * 1024,
            price_per_minute: 0,
            languages: ['en', 'de'],
          },
        ],
      },
    ],
  });
}

const ENV = {
  TEST_OPENAI_KEY: FAKE_OPENAI_KEY,
  CHUNK_SECONDS: '4',
  TRANSCRIBE_CONCURRENCY: '3',
  RATE_LIMIT_RPM: '6000',
  RATE_LIMIT_BURST: '50',
  RETRY_BASE_DELAY_MS: '5',
  RETRY_MAX_DELAY_MS: '40',
};

/** The ended job with the fields this test reads beyond JobJson. */
const endedJob = (url: string, id: string) =>
  pollJob<Job>(url, id, (j) => j.status !== 'processing' && j.status !== 'queued', 'the job to end');

/** Each segment three words long, so word cues and segment cues differ. */
function threeWordSegments(t: FakeTranscript): FakeTranscript {
  const segments = t.segments.map((seg) => ({ ...seg, text: `${seg.text} was said` }));
  return { ...t, segments, text: segments.map((seg) => seg.text).join(' ') };
}

const transcriptions = (fake: FakeOpenAI) => fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');

type TranscriptJson = {
  timing: string;
  language: string | null;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
  words?: Array<{ start: number; end: number; word: string; chunk: number }>;
};
type Job = JobJson & { detected_language?: string | null; estimate: { cost_usd: number; model: string } };

describe('two backends: OpenAI for whisper-1 and a speaches-style server beside it', () => {
  let openai: FakeOpenAI;
  let speaches: FakeOpenAI;
  let server: TestServer;

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    // A self-hosted server: no key, its own model list, it detects German.
    speaches = await startFakeOpenAI({
      apiKey: null,
      models: [SPEACHES_MODEL],
      detectedLanguage: 'de',
      transcript: ({ sha1, durationS }) => threeWordSegments(fakeTranscript(sha1, durationS)),
    });
    server = await startServer({ ...ENV, BACKENDS_JSON: backendsJson(openai, speaches, { max_in_flight: 1 }) });
  });
  afterEach(() => {
    openai.reset();
    speaches.reset();
  });
  afterAll(async () => {
    await server.close();
    await Promise.all([openai.close(), speaches.close()]);
    await removeDir(server.dataDir);
  });

  it('sends a job for the speaches model to that server only, and returns its segment and word times', async () => {
    const created = await upload(server.url, speech.mp3, { model: SPEACHES_MODEL });
    expect(created.status).toBe(202);
    expect(created.body.estimate).toMatchObject({ provider: 'openai', model: SPEACHES_MODEL, cost_usd: 0 });
    const job = await endedJob(server.url, created.body.id);
    expect(job.status).toBe('completed');

    const sent = transcriptions(speaches);
    expect(sent).toHaveLength(job.progress.chunks_total as number);
    expect(transcriptions(openai)).toHaveLength(0);
    expect(sent.every((r) => r.responseFormat === 'verbose_json' && r.language === null)).toBe(true);
    expect(sent.every((r) => r.granularities.join(',') === 'word,segment')).toBe(true);
    // Its own in-flight cap (max_in_flight: 1): no request arrived while another was open.
    expect(sent.map((r) => r.inFlight)).toEqual(sent.map(() => 0));
    // No language asked: the backend's detection is reported on the job.
    expect(job.detected_language).toBe('de');

    const { body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`);
    expect(body.timing).toBe('segment');
    const words = body.words ?? [];
    expect(words.length).toBe(body.segments.reduce((n, s) => n + s.text.split(' ').length, 0));
    // Absolute, in order, and past the first chunk.
    expect(words.every((w, i) => i === 0 || w.start >= words[i - 1]!.start)).toBe(true);
    expect(Math.max(...words.map((w) => w.chunk))).toBe((job.progress.chunks_total as number) - 1);
    expect(words.at(-1)!.end).toBeGreaterThan(speech.durationS - 5);

    const vtt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=vtt&cues=words`)).text();
    expect(vtt.match(/ --> /g)).toHaveLength(words.length);
    const segmentVtt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=vtt`)).text();
    expect(segmentVtt.match(/ --> /g)).toHaveLength(body.segments.length);
    expect(words.length).toBe(body.segments.length * 3);
  });

  it('sends a whisper-1 job (the default model) to OpenAI only; language=auto is the detection', async () => {
    const created = await upload(server.url, speech.mp3, { language: 'auto' });
    expect(created.status).toBe(202);
    const job = await endedJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.estimate.model).toBe('whisper-1');
    expect(transcriptions(speaches)).toHaveLength(0);
    const sent = transcriptions(openai);
    expect(sent).toHaveLength(job.progress.chunks_total as number);
    // Declared without words: segments only.
    expect(sent.every((r) => r.granularities.length === 0 && r.language === null)).toBe(true);
    expect(job.detected_language).toBe('en');
    const { body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`);
    expect(body.words).toBeUndefined();
  });

  it('refuses an unknown model with 400 INVALID_FIELD listing the known ones, leaving nothing behind', async () => {
    const res = await upload(server.url, speech.wav, { model: 'large-v9' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_FIELD');
    expect(res.body.error.details).toEqual({ field: 'model', models: ['whisper-1', SPEACHES_MODEL] });
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(transcriptions(openai).length + transcriptions(speaches).length).toBe(0);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });

  it('refuses a language the chosen model cannot do, per model, at upload', async () => {
    const res = await upload(server.url, speech.wav, { model: SPEACHES_MODEL, language: 'fr' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_FIELD');
    expect(res.body.error.details).toEqual({ field: 'language', languages: ['en', 'de'] });
    expect(await jobFiles(server.dataDir)).toEqual([]);
    // whisper-1 takes any language.
    const ok = await upload(server.url, speech.wav, { model: 'whisper-1', language: 'fr', dry_run: 'true' });
    expect(ok.status).toBe(200);
  });
});

describe('each backend its own rate limit and circuit breaker', () => {
  let openai: FakeOpenAI;
  let speaches: FakeOpenAI;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    openai = await startFakeOpenAI();
    speaches = await startFakeOpenAI({ apiKey: null, models: [SPEACHES_MODEL] });
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      await s.close();
      await removeDir(s.dataDir);
    }
    openai.reset();
    speaches.reset();
  });
  afterAll(async () => {
    await Promise.all([openai.close(), speaches.close()]);
  });

  it("holds the speaches jobs at its own token bucket while OpenAI's jobs go on", async () => {
    // Two tokens, and the next one in ten minutes: exactly two requests can reach the speaches server.
    const server = await startServer({
      ...ENV,
      BACKENDS_JSON: backendsJson(openai, speaches, { rate_limit: { rpm: 0.1, burst: 2 } }),
    });
    servers.push(server);
    const held = await upload(server.url, speech.mp3, { model: SPEACHES_MODEL });
    expect(held.status).toBe(202);
    await until(() => transcriptions(speaches).filter((r) => r.status === 200).length === 2, 'two speaches answers');

    const created = await upload(server.url, speech.mp3, { model: 'whisper-1' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(transcriptions(openai)).toHaveLength(job.progress.chunks_total as number);
    expect(transcriptions(speaches)).toHaveLength(2);
    // Its two answers are stored, and the rest of its chunks wait for a token of its own bucket.
    const body = await pollJob(server.url, held.body.id, (j) => j.progress.chunks_done === 2, 'two chunks stored');
    expect(body.status).toBe('processing');
    let samples = parsePromText('');
    await until(async () => {
      samples = parsePromText(await (await fetch(`${server.url}/metrics`)).text());
      return (sumOf(samples, 'chunkscribe_limiter_queued', { provider: 'speaches' }) ?? 0) > 0;
    }, 'a speaches call waiting for a token');
    expect(sumOf(samples, 'chunkscribe_limiter_tokens', { provider: 'speaches' })).toBe(0);
    expect(sumOf(samples, 'chunkscribe_limiter_queued', { provider: 'openai' })).toBe(0);
    expect(transcriptions(speaches)).toHaveLength(2);
    expect((await fetch(`${server.url}/v1/jobs/${held.body.id}`, { method: 'DELETE' })).status).toBeLessThan(300);
  });

  it("opens only the failing backend's circuit: its jobs wait, the other backend's complete", async () => {
    let failing = true;
    speaches.script(() => (failing ? { type: 'server_error', status: 503 } : null));
    const server = await startServer({
      ...ENV,
      // A probe a second at most, shared by the held chunks: 50 attempts each outlast the other backend's job.
      CHUNK_MAX_ATTEMPTS: '50',
      BACKENDS_JSON: backendsJson(openai, speaches, { circuit: { failure_threshold: 2, cool_down_ms: 1000 } }),
    });
    servers.push(server);
    const held = await upload(server.url, speech.mp3, { model: SPEACHES_MODEL });
    type Waiting = JobJson & { progress: { waiting?: { reason: string } | null } };
    const waiting = await pollJob<Waiting>(
      server.url,
      held.body.id,
      (j) => !!j.progress.waiting || (j.status !== 'processing' && j.status !== 'queued'),
      'the speaches job to wait for its backend',
    );
    expect(waiting.progress.waiting?.reason).toBe('provider_circuit_open');

    const created = await upload(server.url, speech.mp3, { model: 'whisper-1' });
    expect(created.status).toBe(202);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(transcriptions(openai)).toHaveLength(job.progress.chunks_total as number);
    expect(transcriptions(speaches).every((r) => r.model === SPEACHES_MODEL)).toBe(true);

    const samples = parsePromText(await (await fetch(`${server.url}/metrics`)).text());
    expect(sumOf(samples, 'chunkscribe_circuit_state', { provider: 'speaches' })).toBeGreaterThan(0);
    expect(sumOf(samples, 'chunkscribe_circuit_state', { provider: 'openai' })).toBe(0);
    // A backend other than the default one being down degrades only its jobs: the service stays ready.
    const ready = await fetch(`${server.url}/health/ready`);
    const report = (await ready.json()) as { components: Record<string, { status: string }> };
    expect(ready.status).toBe(200);
    expect(report.components.provider?.status).toBe('ok');
    expect(report.components['provider:speaches']?.status).toBe('degraded');

    failing = false;
    const recovered = await waitForJob(server.url, held.body.id);
    expect(recovered.status).toBe('completed');
    expect(recovered.progress.chunks_failed).toBe(0);
  });
});
