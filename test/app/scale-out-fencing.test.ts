import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI, type RequestLogEntry } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, tempDataDir, upload, waitForJob } from '../helper.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3, type TestS3 } from '../support/s3-server.ts';
import {
  killAll,
  onFakeProvider,
  quickLockScaleOut,
  spawnService,
  type ServiceProcess,
} from '../support/service-process.ts';
import { until } from '../support/until.ts';

/*
 * A worker frozen past its queue lock (SIGSTOP: what a long GC pause, a loaded host or a partition looks like from
 * Redis) has its job taken over by another worker. When it wakes up it must stop: no provider request, no write
 * to the store, nothing deleted but its own files. Each worker talks to a fake provider of its own, so what the
 * frozen one sends after it wakes is counted apart.
 */

const LOCK_MS = 3_000;
const CONCURRENCY = 2;
/** The first worker's requests are slow, so it is frozen with some in flight and most chunks still to send. */
const FIRST_LATENCY_MS = 2_000;
/** The state letter of /proc/<pid>/stat ('T' = stopped). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
}

const transcriptions = (fake: FakeOpenAI): RequestLogEntry[] =>
  fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');

/** The first worker's requests sent whole and waiting for answers still at least 500 ms away. */
const farFromAnswers = (fake: FakeOpenAI): number =>
  transcriptions(fake).filter(
    (r) => r.receivedAt !== null && r.answeredAt === null && Date.now() - r.receivedAt < FIRST_LATENCY_MS - 500,
  ).length;

interface Stored {
  job: unknown;
  chunks: Array<{ status: string; error_code: string | null }>;
}

const JOB_SQL = 'SELECT * FROM jobs WHERE id = ';
const CHUNKS_SQL = 'SELECT * FROM chunks WHERE job_id = ';

/** Everything the store holds of the job: its row (every column, PostgreSQL's version too) and its chunk rows. */
async function storedJob(store: { dataDir: string } | { databaseUrl: string }, jobId: string): Promise<Stored> {
  if ('databaseUrl' in store) {
    const client = new Client({ connectionString: store.databaseUrl });
    await client.connect();
    try {
      const job = (await client.query(`${JOB_SQL}$1`, [jobId])).rows[0] as unknown;
      const chunks = (await client.query(`${CHUNKS_SQL}$1 ORDER BY idx`, [jobId])).rows as Stored['chunks'];
      return { job, chunks };
    } finally {
      await client.end();
    }
  }
  const db = new DatabaseSync(path.join(store.dataDir, 'jobs.sqlite'), { readOnly: true });
  try {
    const job = db.prepare(`${JOB_SQL}?`).get(jobId);
    const chunks = db.prepare(`${CHUNKS_SQL}? ORDER BY idx`).all(jobId) as unknown as Stored['chunks'];
    return { job, chunks };
  } finally {
    db.close();
  }
}

describe.each(['sqlite', 'postgresql'])('scale-out on %s: a worker that lost its job to another stops', (kind) => {
  let redis: TestRedis;
  let pg: TestPostgres | undefined;
  /** Where the job store is: the shared DATA_DIR's SQLite file, or a PostgreSQL database. */
  let where: { dataDir: string } | { databaseUrl: string };
  const stored = (jobId: string) => storedJob(where, jobId);
  const doneChunks = async (jobId: string) => (await stored(jobId)).chunks.filter((c) => c.status === 'done').length;
  let fakeFirst: FakeOpenAI;
  let fakeSecond: FakeOpenAI;
  let dataDir: string;
  const procs: ServiceProcess[] = [];
  /** The one API process's base URL. */
  let url: string;

  function start(role: 'api' | 'worker', fake: FakeOpenAI | null): ServiceProcess {
    const proc = spawnService({
      DATA_DIR: dataDir,
      ...onFakeProvider((fake ?? fakeFirst).url, CONCURRENCY),
      ...quickLockScaleOut(redis.url, role, LOCK_MS),
      ...('databaseUrl' in where && { DATABASE_URL: where.databaseUrl }),
    });
    procs.push(proc);
    return proc;
  }
  const logged = (p: ServiceProcess, jobId: string, msg: string) =>
    p.lines.some((l) => l.includes(`"jobId":"${jobId}"`) && l.includes(`"msg":"${msg}"`));

  /**
   * A job running on a new first worker, which is then frozen with a chunk stored and both its requests sent whole
   * and waiting for their answers, each at least 500 ms away: so it is not frozen in the middle of sending one, and
   * any request that reaches its fake after it wakes is one it sent after it woke.
   */
  async function frozenMidJob(): Promise<{ first: ServiceProcess; jobId: string }> {
    const first = start('worker', fakeFirst);
    await first.url;
    const created = await upload(url, speechFixture().mp3);
    expect(created.status).toBe(202);
    const jobId = created.body.id;
    const waiting = () => farFromAnswers(fakeFirst);
    await until(
      async () => waiting() === CONCURRENCY && (await doneChunks(jobId)) >= 1 && waiting() === CONCURRENCY,
      'the first worker with a chunk stored and both its requests sent, their answers still far',
    );
    first.child.kill('SIGSTOP');
    await until(() => processState(first.child.pid!) === 'T', 'the first worker to be stopped');
    return { first, jobId };
  }

  /**
   * Wakes the frozen worker and waits until it stops the job (it learns it lost the job: its lock's known end
   * passed while it was frozen) or goes on with it: sends its next chunks, or fails them (their files gone) and
   * ends the job, whichever it does first. Says whether it logged the stop, and what it had sent before it woke.
   */
  async function wake(
    first: ServiceProcess,
    jobId: string,
  ): Promise<{ stopped: boolean; cancelled: boolean; sentByFirst: number }> {
    // Frozen for seconds by now: every request it sent before has reached the fake.
    const sentByFirst = transcriptions(fakeFirst).length;
    const asleep = first.lines.length;
    first.child.kill('SIGCONT');
    const woke = (msg: string) =>
      first.lines.slice(asleep).some((l) => l.includes(`"jobId":"${jobId}"`) && l.includes(`"msg":"${msg}`));
    await until(
      () =>
        ['job run stopped', 'job cancelled', 'chunk failed', 'job completed', 'job failed'].some(woke) ||
        transcriptions(fakeFirst).length > sentByFirst,
      'the woken worker to stop the job, or to go on with it',
    );
    return {
      stopped: woke('job run stopped: this runner no longer holds the job'),
      cancelled: woke('job cancelled'),
      sentByFirst,
    };
  }

  beforeAll(async () => {
    redis = await startTestRedis();
    fakeFirst = await startFakeOpenAI({ latencyMs: FIRST_LATENCY_MS });
    fakeSecond = await startFakeOpenAI({ latencyMs: 50 });
    dataDir = await tempDataDir();
    if (kind === 'postgresql') {
      pg = await startTestPostgres();
      where = { databaseUrl: pg.urlOf(await pg.createDatabase()) };
    } else where = { dataDir };
    url = await start('api', null).url;
  });

  afterAll(async () => {
    await killAll(procs);
    await fakeFirst?.close();
    await fakeSecond?.close();
    await redis?.stop();
    await pg?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  it('wakes a worker frozen past its lock after another finished its job: it sends, writes and deletes nothing', async () => {
    const { first, jobId } = await frozenMidJob();

    // Past its lock, the job goes to a second worker, which finishes it.
    const second = start('worker', fakeSecond);
    await second.url;
    const job = await waitForJob(url, jobId);
    expect(job.status).toBe('completed');
    expect(logged(second, jobId, 'resuming a job another worker left')).toBe(true);
    const before = await stored(jobId);
    // Every job file on the shared volume but the first worker's own chunk files (chunks-<its run>).
    const own = path.join(jobId, 'chunks-1');
    const filesOf = async () =>
      (await readdir(path.join(dataDir, 'jobs'), { recursive: true })).filter((f) => !f.startsWith(own)).sort();
    const files = await filesOf();

    const { stopped, sentByFirst } = await wake(first, jobId);
    expect(transcriptions(fakeFirst), 'requests sent by the woken worker').toHaveLength(sentByFirst);
    expect(await stored(jobId), 'what the store holds of the job').toEqual(before);
    expect(await filesOf()).toEqual(files);
    expect(stopped).toBe(true);

    const { body } = await getJson<{ segments: Array<{ chunk: number; text: string }> }>(
      `${url}/v1/jobs/${jobId}/transcript`,
    );
    expect(new Set(body.segments.map((s) => s.chunk)).size).toBe(job.progress.chunks_total);
    // Every chunk's text once: the fake's segment texts are unique per chunk and segment.
    const texts = body.segments.map((s) => s.text.trim());
    expect(new Set(texts).size).toBe(texts.length);
    // The woken worker still serves: it takes the next job and finishes it.
    await second.kill9();
    const next = await upload(url, speechFixture().mp3);
    expect((await waitForJob(url, next.body.id)).status).toBe('completed');
    await first.kill9();
  });

  it('wakes it while the second worker is mid-job: the second finishes every chunk, its files untouched', async () => {
    // (The flake this fixes: the woken worker deleted the chunk files the second one was sending: CHUNK_FAILED.)
    fakeFirst.reset();
    fakeSecond.reset();
    fakeSecond.setLatency(800);
    const { first, jobId } = await frozenMidJob();
    const second = start('worker', fakeSecond);
    await second.url;
    const storedBefore = await doneChunks(jobId);
    await until(
      async () =>
        logged(second, jobId, 'resuming a job another worker left') &&
        (await doneChunks(jobId)) > storedBefore &&
        transcriptions(fakeSecond).some((r) => r.answeredAt === null),
      'the second worker mid-job: a chunk stored, a request in flight',
    );
    const { stopped, sentByFirst } = await wake(first, jobId);
    const job = await waitForJob(url, jobId);
    expect(job.status).toBe('completed');
    expect(transcriptions(fakeFirst), 'requests sent by the woken worker').toHaveLength(sentByFirst);
    const { chunks } = await stored(jobId);
    expect(chunks.map((c) => [c.status, c.error_code])).toEqual(chunks.map(() => ['done', null]));
    expect(transcriptions(fakeSecond).every((r) => r.status === 200)).toBe(true);
    expect(stopped).toBe(true);
  });

  it('deletes the job of a frozen worker, the only one: 204, nothing left, the woken worker sends and writes nothing', async () => {
    for (const p of procs.slice(1)) if (p.child.exitCode === null && p.child.signalCode === null) await p.kill9();
    fakeFirst.reset();
    const { first, jobId } = await frozenMidJob();
    // No worker is left to take the job back: the DELETE's cancel takes it off the queue once its lock has run out.
    const deleted = await fetch(`${url}/v1/jobs/${jobId}`, { method: 'DELETE' });
    expect(deleted.status, await deleted.text()).toBe(204);
    expect((await getJson(`${url}/v1/jobs/${jobId}`)).status).toBe(404);
    const { stopped, cancelled, sentByFirst } = await wake(first, jobId);
    expect(transcriptions(fakeFirst), 'requests sent by the woken worker').toHaveLength(sentByFirst);
    // It hears the cancel the DELETE published while it was frozen, or finds its lock gone: either stops the run.
    expect(stopped || cancelled).toBe(true);
    expect(await stored(jobId)).toEqual({ job: undefined, chunks: [] });
    let left: string[] = [];
    await until(
      async () => {
        left = (await readdir(path.join(dataDir, 'jobs'), { recursive: true })).filter((f) => f.startsWith(jobId));
        return left.length === 0;
      },
      () => `nothing of the job on the volume (left: ${left.join(', ')})`,
      { timeoutMs: 20_000 },
    );
    await first.kill9();
  });
});

/** The files (not directories) under a DATA_DIR's jobs/. */
async function jobFilesIn(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'jobs');
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/*
 * Hosts that share PostgreSQL, Redis and a bucket, each with its own scratch DATA_DIR. A worker that has no copy of
 * the upload downloads it for its run; frozen past its queue lock (SIGSTOP) it loses the job to another worker.
 * When it wakes and stops, that download must go with its run's other files: its scratch keeps nothing of a job
 * it no longer runs.
 */
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
      ...onFakeProvider(fake.url, CONCURRENCY),
      ...quickLockScaleOut(redis.url, role, LOCK_MS),
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
    await killAll(procs);
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
    await until(
      async () => farFromAnswers(fakeFirst) > 0 && (await jobFilesIn(first.dataDir)).some((f) => f.endsWith('/upload')),
      'the first worker mid-job with its download of the upload',
    );
    const downloaded = (await jobFilesIn(first.dataDir)).filter((f) => f.endsWith('/upload'));
    expect(downloaded).toEqual([expect.stringMatching(new RegExp(`^${jobId}/chunks-\\d+/upload$`))]);
    first.proc.child.kill('SIGSTOP');
    await until(() => processState(first.proc.child.pid!) === 'T', 'the first worker to be stopped');

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
