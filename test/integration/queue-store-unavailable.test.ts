import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from '../../src/jobs/job-store.ts';
import type { JobRunner } from '../../src/jobs/runner.ts';
import type { JobRecord } from '../../src/jobs/types.ts';
import { QueueRunner } from '../../src/scale/queue-runner.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });

/**
 * A worker that takes a job from the queue reads it from the store first. When the store does not answer then (a
 * PostgreSQL outage), the job must go back to the queue, not fail: BullMQ reports any error of the worker's
 * processor as the job's failure, which the queue runner stores as "interrupted too many times".
 */
describe('a worker taking a job while the store does not answer', () => {
  let redis: TestRedis;
  const runners: QueueRunner[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    for (const r of runners) await r.close(0);
    await redis.stop();
  });

  it('puts the job back on the queue and runs it once the store answers, failing nothing', async () => {
    const id = 'job_AAAAAAAAAAAAAAAAAAAAAA';
    let status: JobRecord['status'] = 'queued';
    let outage = 2;
    const writes: unknown[] = [];
    const store = {
      async getJob() {
        if (outage > 0) {
          outage -= 1;
          throw new Error('connect ECONNREFUSED');
        }
        return { ...jobRecord(id, status, null) };
      },
      async updateJob(...args: unknown[]) {
        writes.push(args);
        return true;
      },
    } as unknown as JobStore;
    const ran: string[] = [];
    const local = {
      running: 0,
      waiting: 0,
      async enqueue(jobId: string) {
        ran.push(jobId);
        status = 'completed';
      },
      cancel: async () => undefined,
      resumeUnfinished: () => 0,
      close: async () => undefined,
    } as unknown as JobRunner;
    const runner = new QueueRunner({
      redisUrl: redis.url,
      connection: { url: redis.url, maxRetriesPerRequest: null },
      prefix: 'store-down',
      role: 'worker',
      local,
      store,
      logger,
      concurrency: 1,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      sweepStrays: async () => undefined,
      retryAfterS: 5,
      now: () => new Date(),
    });
    runners.push(runner);
    await runner.resumeUnfinished();
    await runner.enqueue(id);
    await until(() => ran.length > 0 || writes.length > 0, 'the job to be run (or failed)', { timeoutMs: 30_000 });
    expect(writes).toEqual([]);
    expect(ran).toEqual([id]);
  });
});
