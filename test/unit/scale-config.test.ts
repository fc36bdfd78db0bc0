import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('scale-out configuration', () => {
  it('defaults to one process: no Redis, ROLE=all, 30 s lock and stalled check', () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBeUndefined();
    expect(config.scale).toEqual({ role: 'all', prefix: 'chunkscribe', lockMs: 30_000, stalledIntervalMs: 30_000 });
  });

  it.each(['api', 'worker'])('refuses ROLE=%s without REDIS_URL, naming ROLE', (role) => {
    let error: unknown;
    try {
      loadConfig({ ROLE: role });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([`ROLE: ${role} needs REDIS_URL (scale-out mode)`]);
  });

  it('takes the scale-out settings from the environment and refuses bad ones', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379',
      ROLE: 'worker',
      REDIS_PREFIX: 'cs-prod',
      WORKER_LOCK_MS: '5000',
      WORKER_STALLED_INTERVAL_MS: '2000',
    });
    expect(config.scale).toEqual({ role: 'worker', prefix: 'cs-prod', lockMs: 5_000, stalledIntervalMs: 2_000 });
    expect(() => loadConfig({ REDIS_URL: 'redis://x', ROLE: 'both' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis://x', REDIS_PREFIX: 'a:b' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis://x', WORKER_LOCK_MS: '10' })).toThrow(ConfigError);
  });
});
