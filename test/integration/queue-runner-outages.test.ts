import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from '../../src/jobs/job-store.ts';
import type { JobRunner } from '../../src/jobs/runner.ts';
import type { JobRecord } from '../../src/jobs/types.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { QueueRunner } from '../../src/scale/queue-runner.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const JOB_ID = 'job_AAAAAAAAAAAAAAAAAAAAAA';

/** The scale-out queue when what it depends on is away: Redis (for a cancel), the job store (for a worker). */
describe('the job queue while Redis or the store does not answer', () => {
  let redis: TestRedis;
  const runners: QueueRunner[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.start().catch(() => undefined);
    for (const r of runners) await r.close(0);
    await redis.stop();
  });

  function runnerOptions(prefix: string, role: 'api' | 'worker', local: JobRunner, store: JobStore) {
    return {
      redisUrl: redis.url,
      connection: { url: redis.url, maxRetriesPerRequest: null },
      prefix,
      role,
      local,
      store,
      logger,
      concurrency: 1,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      sweepStrays: async () => undefined,
      retryAfterS: 5,
      now: () => new Date(),
    };
  }

  function runnerOf(prefix: string, role: 'api' | 'worker', local: Partial<JobRunner>, store: Partial<JobStore>) {
    const runnerLocal = { close: async () => undefined, ...local } as JobRunner;
    const runner = new QueueRunner(runnerOptions(prefix, role, runnerLocal, store as JobStore));
    runners.push(runner);
    return runner;
  }

  /**
   * A worker that takes a job from the queue reads it from the store first. When the store does not answer then
   * (a PostgreSQL outage), the job must go back to the queue, not fail: BullMQ reports any error of the worker's
   * processor as the job's failure, which the queue runner stores in the job's row.
   */
  it('puts a job a worker took while the store did not answer back on the queue, and runs it once it answers', async () => {
    let status: JobRecord['status'] = 'queued';
    let outage = 2;
    const writes: unknown[] = [];
    const ran: string[] = [];
    const runner = runnerOf(
      'store-down',
      'worker',
      {
        async enqueue(jobId: string) {
          ran.push(jobId);
          status = 'completed';
        },
      },
      {
        async getJob() {
          if (outage > 0) {
            outage -= 1;
            throw new Error('connect ECONNREFUSED');
          }
          return jobRecord(JOB_ID, status, null);
        },
        async updateJob(...args: unknown[]) {
          writes.push(args);
          return true;
        },
      },
    );
    await runner.resumeUnfinished();
    await runner.enqueue(JOB_ID);
    await until(() => ran.length > 0 || writes.length > 0, 'the job to be run (or failed)', { timeoutMs: 30_000 });
    expect(writes).toEqual([]);
    expect(ran).toEqual([JOB_ID]);
  });

  /**
   * A worker's processor that fails for another reason than stalling (here its sweep of a dead worker's leftovers)
   * fails the job with words that say so, not "interrupted too many times", which is BullMQ's stall limit's.
   */
  it("fails a job its worker could not run with that reason, in the real store's row", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-queue-fail-'));
    const store = new SqliteJobStore({ file: path.join(dir, 'jobs.db'), now: () => new Date() });
    try {
      await store.insertJob(jobRecord(JOB_ID, 'queued', null));
      const idle: Partial<JobRunner> = { close: async () => undefined };
      const runner = new QueueRunner({
        ...runnerOptions('sweep-fails', 'worker', idle as JobRunner, store),
        sweepStrays: async () => {
          throw new Error('EACCES: permission denied');
        },
      });
      runners.push(runner);
      await runner.resumeUnfinished();
      await runner.enqueue(JOB_ID);
      await until(async () => (await store.getJob(JOB_ID))?.status === 'failed', 'the job to fail', {
        timeoutMs: 30_000,
      });
      expect(await store.getJob(JOB_ID)).toMatchObject({
        errorCode: 'INTERNAL',
        errorMessage: 'The job could not be run: the worker that took it failed (see the service log).',
      });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  /**
   * DELETE /v1/jobs/:id asks the queue to stop the job wherever it runs before its row and files go. With Redis
   * away the API process cannot say it: the request must be answered (503, the job kept, to be deleted again), not
   * held until Redis is back, and the row must not go while a worker may still be running the job.
   */
  it('refuses a cancel with SERVER_BUSY (resource redis) instead of waiting for Redis (the last test: Redis stays down)', async () => {
    const runner = runnerOf('cancel-down', 'api', {}, {});
    await until(async () => (await runner.redisHealth()).status === 'ok', 'the connection to Redis');
    await redis.kill();
    let outcome: unknown = 'pending';
    runner.cancel(JOB_ID).then(
      () => (outcome = 'cancelled'),
      (err: unknown) => (outcome = err),
    );
    await until(() => outcome !== 'pending', 'the cancel to be answered', { timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ code: 'SERVER_BUSY', retryAfterS: 5, details: { resource: 'redis' } });
  });
});
