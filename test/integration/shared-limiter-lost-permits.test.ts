import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSharedRateLimiter } from '../../src/scale/shared-rate-limiter.ts';
import type { RateLimiter } from '../../src/transcribe/rate-limiter.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });

/**
 * Each request waiting in the shared limiter has a permit job in Redis. Redis may lose some of them (a restart
 * that loses the last second of its append-only file, a FLUSHALL): the requests waiting on them must still go,
 * not wait until their chunk's deadline fails them.
 */
describe('the shared rate limit when Redis loses the permits of waiting requests', () => {
  let redis: TestRedis;
  let admin: Redis;
  const limiters: RateLimiter[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await Promise.all(limiters.map((l) => l.stop()));
    admin.disconnect();
    await redis.stop();
  });

  /** One process's limiter of one deployment (`prefix`), stopped after the tests. */
  function limiterOf(prefix: string, limits: { rpm: number; burst: number; maxInFlight: number }): RateLimiter {
    const connection = { url: redis.url, maxRetriesPerRequest: null };
    const limiter = createSharedRateLimiter({ connection, prefix, logger, ...limits });
    limiters.push(limiter);
    return limiter;
  }

  it('adds no permit while none is lost, window after window', async () => {
    // windowFor(1200, 2): one permit per 50 ms window, so the requests wait through window ends.
    const limiter = limiterOf('no-lost-permits', { rpm: 1200, burst: 2, maxInFlight: 4 });
    const done = await Promise.all(Array.from({ length: 12 }, (_, i) => limiter.schedule(async () => i)));
    expect(done).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(await admin.llen('no-lost-permits:provider-permits:wait')).toBe(0);
  });

  it('starts the requests whose permits Redis lost once a call slot frees up', async () => {
    // A generous rate: only the one call slot (MAX_IN_FLIGHT 1) holds the second request.
    const limiter = limiterOf('lost-permits', { rpm: 6000, burst: 10, maxInFlight: 1 });
    let releaseFirst = () => {};
    const first = limiter.schedule(() => new Promise<string>((resolve) => (releaseFirst = () => resolve('first'))));
    await until(async () => (await limiter.stats()).running === 1, 'the first request to start');
    const waiting = [limiter.schedule(async () => 'second'), limiter.schedule(async () => 'third')];
    // Settled whatever the outcome, so a failure here is this test's, not an unhandled rejection at stop.
    for (const w of waiting) w.catch(() => undefined);
    const permitsWaiting = async () => admin.llen('lost-permits:provider-permits:wait');
    await until(async () => (await permitsWaiting()) === 2, "the waiting requests' permits to be in Redis");
    await admin.flushall();
    releaseFirst();
    await expect(first).resolves.toBe('first');
    const started: string[] = [];
    for (const w of waiting) void w.then((name) => started.push(name));
    // A request left without a permit waits for ever (in the service: until its chunk's deadline fails it).
    await until(
      () => started.length === 2,
      () => `both waiting requests to start (started: ${started.join(', ')})`,
      {
        timeoutMs: 20_000,
      },
    );
    await expect(Promise.all(waiting)).resolves.toEqual(['second', 'third']);
    // One permit was added again per request that lost its own, and none is left over.
    expect(await permitsWaiting()).toBe(0);
  });

  it('takes a longer pause after the wall clock stepped back an hour, not only once it has caught up', async () => {
    const limiter = limiterOf('paused-across-a-step', { rpm: 6000, burst: 10, maxInFlight: 1 });
    limiter.pauseFor(10_000, 'HTTP 429');
    const first = (await limiter.stats()).pausedUntil ?? 0;
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() - 3_600_000);
    try {
      // On the wall clock this pause ended an hour before the first one, so it was ignored (Redis kept 10 s).
      limiter.pauseFor(60_000, 'HTTP 429');
      expect((await limiter.stats()).pausedUntil).toBeGreaterThan(first + 40_000);
      await until(
        async () => (await admin.pttl('paused-across-a-step:provider-permits:limiter')) > 40_000,
        'the shared pause to be the longer one',
        { timeoutMs: 20_000 },
      );
    } finally {
      vi.restoreAllMocks();
    }
  });
});
