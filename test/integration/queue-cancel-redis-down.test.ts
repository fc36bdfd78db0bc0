import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from '../../src/jobs/job-store.ts';
import type { JobRunner } from '../../src/jobs/runner.ts';
import { QueueRunner } from '../../src/scale/queue-runner.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });

/**
 * DELETE /v1/jobs/:id asks the queue to stop the job wherever it runs before its row and files go. With Redis away
 * the API process cannot say it: the request must be answered (503, the job kept, to be deleted again), not held
 * until Redis is back, and the row must not go while a worker may still be running the job.
 */
describe('cancelling a job through the queue while Redis is away', () => {
  let redis: TestRedis;
  let runner: QueueRunner;

  beforeAll(async () => {
    redis = await startTestRedis();
    runner = new QueueRunner({
      redisUrl: redis.url,
      connection: { url: redis.url, maxRetriesPerRequest: null },
      prefix: 'cancel-down',
      role: 'api',
      // ROLE=api runs no job: the local runner is only closed.
      local: { close: async () => undefined } as unknown as JobRunner,
      store: {} as JobStore,
      logger,
      concurrency: 1,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      sweepStrays: async () => undefined,
      retryAfterS: 5,
      now: () => new Date(),
    });
  });
  afterAll(async () => {
    await redis.start().catch(() => undefined);
    await runner.close(0);
    await redis.stop();
  });

  it('refuses with SERVER_BUSY (resource redis) instead of waiting for Redis', async () => {
    await until(async () => (await runner.redisHealth()).status === 'ok', 'the connection to Redis');
    await redis.kill();
    let outcome: unknown = 'pending';
    runner.cancel('job_AAAAAAAAAAAAAAAAAAAAAA').then(
      () => (outcome = 'cancelled'),
      (err: unknown) => (outcome = err),
    );
    await until(() => outcome !== 'pending', 'the cancel to be answered', { timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ code: 'SERVER_BUSY', retryAfterS: 5, details: { resource: 'redis' } });
  });
});
