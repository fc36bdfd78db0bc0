import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scaleOutLimiter } from '../../src/scale/index.ts';
import { loadConfig } from '../../src/config.ts';
import type { RateLimiter } from '../../src/transcribe/rate-limiter.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
// windowFor(0.1, 2): one permit per ten-minute window, so a second call of the same backend cannot start in a test.
const LIMITS = { rateLimit: { rpm: 0.1, burst: 2 }, maxInFlight: 4 };

describe('the scale-out rate limit of several backends on one Redis', () => {
  let redis: TestRedis;
  const limiters: RateLimiter[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await Promise.all(limiters.map((l) => l.stop()));
    await redis.stop();
  });

  async function limiterOf(backend: string): Promise<RateLimiter> {
    const config = loadConfig({ REDIS_URL: redis.url, REDIS_PREFIX: 'backends-test' });
    const limiter = await scaleOutLimiter(config, logger, { name: backend, ...LIMITS });
    if (!limiter) throw new Error('no shared limiter with REDIS_URL set');
    limiters.push(limiter);
    return limiter;
  }

  it("is shared by the processes of one backend, and separate from another backend's", async () => {
    // Two processes' limiters for backend "a" (one window between them), one for backend "b".
    const [a1, a2, b] = await Promise.all([limiterOf('a'), limiterOf('a'), limiterOf('b')]);
    const started: string[] = [];
    const call = (name: string) => async () => {
      started.push(name);
      return name;
    };
    await expect(a1.schedule(call('a1'))).resolves.toBe('a1');
    const held = new AbortController();
    const second = a2.schedule(call('a2'), { signal: held.signal });
    const third = b.schedule(call('b'));
    // "b" gets its permit while "a"'s window, used by a1, holds a2 for ten minutes.
    await until(() => started.includes('b'), 'the call of backend b', { timeoutMs: 20_000 });
    await expect(third).resolves.toBe('b');
    expect(started).toEqual(['a1', 'b']);
    held.abort();
    await expect(second).rejects.toBeDefined();
    expect(started).toEqual(['a1', 'b']);
  });
});
