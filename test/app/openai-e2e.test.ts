import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';
import {
  getJson,
  jobFiles,
  removeDir,
  startServer,
  upload,
  waitForJob,
  type ErrorJson,
  type TestServer,
} from '../helper.ts';

interface TranscriptJson {
  text: string;
  duration_s: number;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
}

/** The fake answers segment i of a chunk with `chunk-<sha8>-<i>`: which chunk's bytes produced each segment. */
function tagsByChunk(t: TranscriptJson): Map<number, Set<string>> {
  const byChunk = new Map<number, Set<string>>();
  for (const seg of t.segments) {
    for (const m of seg.text.matchAll(/chunk-([0-9a-f]{8})-\d+/g)) {
      const set = byChunk.get(seg.chunk) ?? new Set<string>();
      set.add(m[1]!);
      byChunk.set(seg.chunk, set);
    }
  }
  return byChunk;
}

describe('the service end to end with the openai engine against the fake OpenAI server', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 20 });
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      TRANSCRIBE_CONCURRENCY: '3',
      RATE_LIMIT_RPM: '6000',
      RATE_LIMIT_BURST: '50',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '40',
      CHUNK_MAX_ATTEMPTS: '12',
    });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await server.close();
    await fake.close();
    await removeDir(server.dataDir);
  });

  it('transcribes every chunk exactly once, in order, at absolute times', async () => {
    const created = await upload(server.url, speech.mp3, { model: 'whisper-1' });
    expect(created.status).toBe(202);
    expect(created.body.estimate).toMatchObject({ provider: 'openai', model: 'whisper-1' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_total).toBeGreaterThanOrEqual(6);

    const transcripts = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(transcripts).toHaveLength(job.progress.chunks_total);
    expect(transcripts.every((r) => r.model === 'whisper-1' && r.responseFormat === 'verbose_json')).toBe(true);

    const { body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`);
    const tags = tagsByChunk(body);
    expect(tags.size).toBe(job.progress.chunks_total);
    for (const set of tags.values()) expect(set.size).toBe(1);
    const sent = new Set(transcripts.map((r) => r.sha1!.slice(0, 8)));
    expect(new Set([...tags.values()].flatMap((s) => [...s]))).toEqual(sent);
    const chunkOrder = body.segments.map((s) => s.chunk);
    expect(chunkOrder).toEqual([...chunkOrder].sort((a, b) => a - b));
    expect(body.segments.at(-1)!.end).toBeGreaterThan(speech.durationS - 2);
    expect(body.segments.every((s) => s.start >= 0 && s.end <= body.duration_s + 0.01)).toBe(true);
  });

  it('says a gpt-4o-transcribe transcript has chunk-level times only, in json and in vtt', async () => {
    const created = await upload(server.url, speech.wav, { model: 'gpt-4o-transcribe' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.every((r) => r.model === 'gpt-4o-transcribe' && r.responseFormat === 'json')).toBe(true);
    const { body } = await getJson<TranscriptJson & { timing: string }>(`${server.url}/v1/jobs/${job.id}/transcript`);
    expect(body.timing).toBe('chunk');
    // One segment per chunk, spanning it.
    expect(body.segments.map((s) => s.chunk)).toEqual([...Array(job.progress.chunks_total).keys()]);
    const vtt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=vtt`)).text();
    expect(vtt).toMatch(/^WEBVTT\n\nNOTE The model gave no segment times/);

    const whisper = await waitForJob(server.url, (await upload(server.url, speech.wav)).body.id);
    const w = await getJson<TranscriptJson & { timing: string }>(`${server.url}/v1/jobs/${whisper.id}/transcript`);
    expect(w.body.timing).toBe('segment');
    expect(await (await fetch(`${server.url}/v1/jobs/${whisper.id}/transcript?format=vtt`)).text()).not.toContain(
      'NOTE',
    );
  });

  it('completes under 30% random transient faults with every chunk exactly once in the transcript', async () => {
    fake.setRandom({
      seed: 7,
      probability: 0.3,
      faults: [{ type: 'rate_limit', retryAfterS: null }, { type: 'server_error', status: 503 }, 'drop'],
    });
    const created = await upload(server.url, speech.mp3);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_failed).toBe(0);
    expect(fake.requests.some((r) => r.fault !== null)).toBe(true);

    const { body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`);
    const tags = tagsByChunk(body);
    expect(tags.size).toBe(job.progress.chunks_total);
    const all = [...tags.values()].flatMap((s) => [...s]);
    expect(new Set(all).size).toBe(all.length);
    const answered = fake.requests.filter((r) => r.status === 200).map((r) => r.sha1!.slice(0, 8));
    expect(new Set(all)).toEqual(new Set(answered));
  });

  it('fails the job with PROVIDER_QUOTA when the account is out of credit, without retrying it', async () => {
    fake.script(['quota', 'quota', 'quota']);
    const created = await upload(server.url, speech.wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('PROVIDER_QUOTA');
    // At most the chunks already in flight when the first answer came back, never a retry of them.
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.length).toBeLessThanOrEqual(3);
    expect(sent.every((r) => r.attempt === 0)).toBe(true);
    // The failure is stored before the run lets go of the job's files: their removal follows it.
    const left = async () =>
      (await jobFiles(server.dataDir)).filter((f) => f.includes(job.id) && f.length > job.id.length);
    await until(async () => (await left()).length === 0, "the failed job's files to be removed");
    expect(await left()).toEqual([]);
  });

  it('refuses uploads with 502 PROVIDER_AUTH when the provider rejects the key, and leaves nothing behind', async () => {
    // A fresh server, so its provider check is not the cached answer of the other tests.
    const other = await startServer({ OPENAI_API_KEY: 'sk-wrong', OPENAI_BASE_URL: fake.url });
    try {
      const res = await upload(other.url, speech.wav);
      expect(res.status).toBe(502);
      expect((res.body as unknown as ErrorJson).error.code).toBe('PROVIDER_AUTH');
      expect(await jobFiles(other.dataDir)).toEqual([]);
      expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
      const ready = await getJson<{ components: { provider: { status: string } } }>(`${other.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(ready.body.components.provider.status).toBe('down');
    } finally {
      await other.close();
      await removeDir(other.dataDir);
    }
  });
});
