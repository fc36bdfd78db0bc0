import { readFile } from 'node:fs/promises';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, pollJob, removeDir, startServer, tempDataDir, waitForJob, type JobJson } from '../helper.ts';

const KEY = 'facade-shutdown-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

describe('OpenAI answers still waiting when the server closes', () => {
  let fake: FakeOpenAI;
  let dataDir: string;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    dataDir = await tempDataDir();
  });
  afterAll(async () => {
    await fake?.close();
    if (dataDir) await removeDir(dataDir);
  });

  it('get the error object and a cut body; the job resumes at the next start', async () => {
    const env = {
      API_KEYS: KEY,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
      CHUNK_MAX_ATTEMPTS: '50',
      SHUTDOWN_TIMEOUT_MS: '100',
    };
    // Every chunk after the first waits (429, Retry-After 1 s) until the test lets it through.
    let hold = true;
    fake.script((i) => (hold && i >= 1 ? { type: 'rate_limit', retryAfterS: 1 } : undefined));
    const first = await startServer(env, dataDir);
    const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const file = await toFile(await readFile(speech.wav), 'speech.wav');
    const response = await client.audio.transcriptions
      .create({ file, model: 'whisper-1', response_format: 'verbose_json' })
      .asResponse();
    const id = response.headers.get('x-job-id')!;
    const body = response.text().then(
      (text) => ({ cut: false, text }),
      () => ({ cut: true, text: '' }),
    );
    // Closed while transcribing (held), not while slicing: a stop during slicing marks the job cancelled (a
    // runner matter, reported apart from this test).
    await pollJob(first.url, id, (job) => job.progress.chunks_done >= 1, 'the first chunk done', { headers: AUTH });
    await first.close();
    // The body does not end as a transcript: the SDK would throw rather than return one.
    expect(await body).toEqual({ cut: true, text: '' });

    hold = false;
    const second = await startServer(env, dataDir);
    try {
      const job = await waitForJob(second.url, id, AUTH);
      expect(job.status).toBe('completed');
      const listed = await getJson<{ items: JobJson[] }>(`${second.url}/v1/jobs`, AUTH);
      expect(listed.body.items.map((j) => j.id)).toEqual([id]);
    } finally {
      await second.close();
    }
  });
});
