import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { closeWithin } from '../../src/scale/bounded-close.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const log = pino({ level: 'silent' });

describe('closeWithin against a real Redis that died', () => {
  let redis: TestRedis | undefined;
  afterEach(async () => {
    await redis?.stop();
  });

  // The open shutdown hang of stop 14: close() waits on a connection stuck reconnecting, and ioredis' disconnect()
  // of a client that is between reconnect attempts never emits 'end', so BullMQ's disconnect() waited for ever too.
  it('returns while the worker connections are between reconnect attempts to a dead server', async () => {
    redis = await startTestRedis();
    const worker = new Worker('q', async () => undefined, {
      connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null },
      prefix: 'bounded-close-test',
    });
    let refused = 0;
    worker.on('error', (err) => {
      if (/ECONNREFUSED/.test(err.message)) refused += 1;
    });
    await worker.waitUntilReady();
    await redis.kill();
    // A refused connection attempt means a client is now waiting for its next attempt (ioredis 'reconnecting').
    await until(
      () => refused >= 2,
      () => `the worker's connections to be refused by the dead server (${refused} refusals)`,
      { timeoutMs: 20_000, everyMs: 20 },
    );
    // The test's own timeout is the failure signal: on the old code this never returned.
    await expect(closeWithin('worker', worker, log, 200)).resolves.toBeUndefined();
  }, 30_000);
});
