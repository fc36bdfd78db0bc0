import { afterAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';
import { jobFiles, pollJob, removeDir, startServer, tempDataDir, upload, waitForJob } from '../helper.ts';

describe('restart', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await removeDir(d);
  });

  it('finishes a job interrupted mid-way without re-sending chunks whose result was stored', async () => {
    const fake = await startFakeOpenAI({ latencyMs: 300 });
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const env = {
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      // Three chunks, each cut in a pause: overlap is asked for but not needed, so the mp3 is copied. The
      // restarted process must cut the rest the same way (from the stored plan), not as a job of unknown cuts.
      CHUNK_SECONDS: '12',
      CHUNK_OVERLAP_SECONDS: '1',
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
      // The stop does not wait for the request in flight: it is abandoned, as in a crash.
      SHUTDOWN_TIMEOUT_MS: '100',
    };
    try {
      const first = await startServer(env, dataDir);
      const created = await upload(first.url, speechFixture().mp3);
      expect(created.status).toBe(202);
      await pollJob(
        first.url,
        created.body.id,
        (job) => job.progress.chunks_done >= 2,
        'two chunks done before the stop',
        { everyMs: 50 },
      );
      await first.close();

      const stopped = fake.requests.length;
      const storedBefore = new Set(fake.requests.filter((r) => r.sha1 !== null && r.status === 200).map((r) => r.sha1));
      expect(storedBefore.size).toBeGreaterThanOrEqual(2);

      const second = await startServer(env, dataDir);
      try {
        const job = await waitForJob(second.url, created.body.id);
        expect(job.status).toBe('completed');
        const after = fake.requests.slice(stopped);
        // Nothing that was answered and stored before the stop is sent again.
        expect(after.filter((r) => storedBefore.has(r.sha1))).toEqual([]);
        // Every chunk was answered exactly once over both runs (the abandoned request was never answered).
        const answered = fake.requests.filter((r) => r.sha1 !== null && r.status === 200).map((r) => r.sha1);
        expect(new Set(answered).size).toBe(answered.length);
        expect(answered.length).toBe(job.progress.chunks_total);
        expect(after.length).toBeGreaterThanOrEqual(1);
        const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
        expect(sent.map((r) => r.filename?.split('.').pop())).toEqual(Array(sent.length).fill('mp3'));
        // The runner removes the files right after the job's end is stored (a stop in between resumes from them), so
        // a client may see `completed` a moment before they are gone.
        const leftovers = async () =>
          (await jobFiles(dataDir)).filter((f) => f.includes('upload') || f.includes('chunk-'));
        await until(
          async () => (await leftovers()).length === 0,
          'the upload and chunk files to be removed after the job completed',
          {
            timeoutMs: 10_000,
          },
        );
      } finally {
        await second.close();
      }
    } finally {
      await fake.close();
    }
  });
});
