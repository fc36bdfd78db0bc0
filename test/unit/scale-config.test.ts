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

describe('TRUST_PROXY', () => {
  it('trusts no proxy by default, and takes addresses, CIDR ranges and the named private ranges', () => {
    expect(loadConfig({}).trustProxy).toEqual([]);
    expect(
      loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, 192.168.1.5,::1 , fd00::/8,uniquelocal,loopback ' }).trustProxy,
    ).toEqual(['10.0.0.0/8', '192.168.1.5', '::1', 'fd00::/8', 'uniquelocal', 'loopback']);
    expect(loadConfig({ TRUST_PROXY: '' }).trustProxy).toEqual([]);
  });

  it.each(['true', '*', '0.0.0.0/0', '::/0', 'caddy', '10.0.0.0/33', '10.0.0.0/8/1', '10.0.0.0/-1', '300.1.1.1'])(
    'refuses %s, naming TRUST_PROXY: never every peer, nothing that is not an address',
    (value) => {
      let error: unknown;
      try {
        loadConfig({ TRUST_PROXY: value });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues).toEqual([expect.stringMatching(/^TRUST_PROXY: /)]);
    },
  );
});
