import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, tempDataDir, upload, waitForJob } from '../helper.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3, type TestS3 } from '../support/s3-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';

/*
 * Hosts that share PostgreSQL, Redis and a bucket, each with its own scratch DATA_DIR. A worker that has no copy of
 * the upload downloads it for its run; frozen past its queue lock (SIGSTOP) it loses the job to another worker.
 * When it wakes and stops, that download must go with its run's other files: its scratch keeps nothing of a job
 * it no longer runs.
 */

const LOCK_MS = 3_000;
const CONCURRENCY = 2;
/** The first worker's requests are slow: it is frozen with requests in flight and chunks still to send. */
const FIRST_LATENCY_MS = 2_000;

/** The files (not directories) under a DATA_DIR's jobs/. */
async function jobFilesIn(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'jobs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

describe('scale-out with an object store: a worker that lost its job keeps nothing of it on its scratch', () => {
  let redis: TestRedis;
  let pg: TestPostgres;
  let s3: TestS3;
  let databaseUrl: string;
  let fakeFirst: FakeOpenAI;
  let fakeSecond: FakeOpenAI;
  const dirs: string[] = [];
  const procs: ServiceProcess[] = [];
  let url: string;

  async function start(role: 'api' | 'worker', fake: FakeOpenAI): Promise<{ proc: ServiceProcess; dataDir: string }> {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const proc = spawnService({
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      ...s3Env(s3),
      ...S3RVER_CREDENTIALS,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      TRANSCRIBE_CONCURRENCY: String(CONCURRENCY),
      RATE_LIMIT_RPM: '6000',
      RATE_LIMIT_BURST: '50',
      REDIS_URL: redis.url,
      ROLE: role,
      WORKER_LOCK_MS: String(LOCK_MS),
      WORKER_STALLED_INTERVAL_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '2000',
      PRESSURE_EVENT_LOOP_DELAY_MS: '0',
    });
    procs.push(proc);
    await proc.url;
    return { proc, dataDir };
  }

  beforeAll(async () => {
    redis = await startTestRedis();
    pg = await startTestPostgres();
    databaseUrl = pg.urlOf(await pg.createDatabase());
    s3 = await startTestS3();
    fakeFirst = await startFakeOpenAI({ latencyMs: FIRST_LATENCY_MS });
    fakeSecond = await startFakeOpenAI({ latencyMs: 50 });
    url = await (await start('api', fakeSecond)).proc.url;
  });

  afterAll(async () => {
    for (const p of procs) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
    }
    await Promise.all(procs.map((p) => p.exited));
    await fakeFirst?.close();
    await fakeSecond?.close();
    await s3?.close();
    await redis?.stop();
    await pg?.stop();
    for (const d of dirs) await removeDir(d);
  });

  it("removes its download of the upload once its run has stopped; the job completes on the other worker's", async () => {
    const first = await start('worker', fakeFirst);
    const created = await upload(url, speechFixture().mp3);
    expect(created.status).toBe(202);
    const jobId = created.body.id;
    // Mid-job: its own download of the upload on its scratch, requests sent and far from their answers.
    const inFlight = () =>
      fakeFirst.requests.filter(
        (r) =>
          r.path === '/v1/audio/transcriptions' &&
          r.receivedAt !== null &&
          r.answeredAt === null &&
          Date.now() - r.receivedAt < FIRST_LATENCY_MS - 500,
      ).length;
    await until(
      async () => inFlight() > 0 && (await jobFilesIn(first.dataDir)).some((f) => f.endsWith('/upload')),
      'the first worker mid-job with its download of the upload',
    );
    const downloaded = (await jobFilesIn(first.dataDir)).filter((f) => f.endsWith('/upload'));
    expect(downloaded).toEqual([expect.stringMatching(new RegExp(`^${jobId}/chunks-\\d+/upload$`))]);
    first.proc.child.kill('SIGSTOP');

    // Past its lock, the job goes to a second worker on another scratch, which finishes it.
    const second = await start('worker', fakeSecond);
    const job = await waitForJob(url, jobId);
    expect(job.status).toBe('completed');

    const asleep = first.proc.lines.length;
    first.proc.child.kill('SIGCONT');
    await until(
      () =>
        first.proc.lines
          .slice(asleep)
          .some((l) => l.includes(`"jobId":"${jobId}"`) && l.includes('"msg":"job run stopped')),
      'the woken worker to stop the run it lost',
    );
    let left: string[] = [];
    await until(
      async () => {
        left = await jobFilesIn(first.dataDir);
        return left.length === 0;
      },
      () => `nothing of the job on the first worker's scratch (left: ${left.join(', ')})`,
      { timeoutMs: 20_000 },
    );

    // The woken worker still serves: it takes the next job and finishes it, and keeps nothing of that one either.
    await second.proc.kill9();
    const next = await upload(url, speechFixture().mp3);
    expect((await waitForJob(url, next.body.id)).status).toBe('completed');
    await until(async () => (await jobFilesIn(first.dataDir)).length === 0, "the next job's files to go");
  });
});
