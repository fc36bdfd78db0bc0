import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { isLoopbackAddress, openModeClientRefusal } from '../../src/http/open-mode-clients.ts';

describe('isLoopbackAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.3.4', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    // What a dual-stack listener ('::') reports for an IPv4 loopback client.
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['198.18.0.1', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['128.0.0.1', false],
    ['0.0.0.0', false],
    ['::', false],
    ['fe80::1', false],
    // IPv4-compatible (deprecated), not IPv4-mapped: not loopback.
    ['::127.0.0.1', false],
    ['localhost', false],
    ['', false],
    [undefined, false],
  ])('%s: %s', (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
  });
});

describe('openModeClientRefusal', () => {
  const none = {};
  it('serves a client on loopback that no proxy forwarded', () => {
    expect(openModeClientRefusal({ ip: '127.0.0.1', headers: none })).toBeNull();
    expect(openModeClientRefusal({ ip: '::1', headers: none })).toBeNull();
    expect(openModeClientRefusal({ ip: '::ffff:127.0.0.1', headers: none })).toBeNull();
    // TRUST_PROXY set, no header: request.ips is the connection's address alone.
    expect(openModeClientRefusal({ ip: '127.0.0.1', ips: ['127.0.0.1'], headers: none })).toBeNull();
  });

  it('refuses a client that is not on loopback, whatever it sends', () => {
    expect(openModeClientRefusal({ ip: '198.18.0.1', headers: none })).toBe('open_mode_remote');
    expect(openModeClientRefusal({ ip: undefined, headers: none })).toBe('open_mode_remote');
    // A forged header from a peer TRUST_PROXY does not name is not believed: request.ip is the peer's.
    expect(
      openModeClientRefusal({ ip: '198.18.0.1', ips: ['198.18.0.1'], headers: { 'x-forwarded-for': '127.0.0.1' } }),
    ).toBe('open_mode_remote');
  });

  it('refuses a remote client behind a trusted proxy on loopback (request.ip is the forwarded address)', () => {
    expect(
      openModeClientRefusal({
        ip: '198.18.0.7',
        ips: ['127.0.0.1', '198.18.0.7'],
        headers: { 'x-forwarded-for': '198.18.0.7' },
      }),
    ).toBe('open_mode_remote');
  });

  it("refuses a trusted proxy's own loopback client when the proxy runs on another host", () => {
    expect(
      openModeClientRefusal({
        ip: '127.0.0.1',
        ips: ['10.0.0.5', '127.0.0.1'],
        headers: { 'x-forwarded-for': '127.0.0.1' },
      }),
    ).toBe('open_mode_remote');
  });

  it('serves a loopback client through a trusted proxy on loopback', () => {
    expect(
      openModeClientRefusal({
        ip: '127.0.0.1',
        ips: ['127.0.0.1', '127.0.0.1'],
        headers: { 'x-forwarded-for': '127.0.0.1' },
      }),
    ).toBeNull();
  });

  it('refuses what a proxy on loopback that TRUST_PROXY does not name forwards: the client is unknown', () => {
    for (const headers of [
      { 'x-forwarded-for': '203.0.113.9' },
      { forwarded: 'for=203.0.113.9' },
      { 'x-real-ip': '203.0.113.9' },
      // A header claiming loopback is no better.
      { 'x-forwarded-for': '127.0.0.1' },
    ]) {
      expect(openModeClientRefusal({ ip: '127.0.0.1', headers }), JSON.stringify(headers)).toBe('open_mode_proxied');
      expect(openModeClientRefusal({ ip: '127.0.0.1', ips: ['127.0.0.1'], headers })).toBe('open_mode_proxied');
    }
  });
});

describe('OPEN_MODE_CLIENTS in loadConfig', () => {
  const base = { DATA_DIR: '/tmp/cs-open-mode', TRANSCRIBE_PROVIDER: 'local' };

  it('is loopback by default, any when set, and left alone (not read) with API keys', () => {
    expect(loadConfig(base).openModeClients).toBe('loopback');
    expect(loadConfig({ ...base, OPEN_MODE_CLIENTS: 'any' }).openModeClients).toBe('any');
    expect(loadConfig({ ...base, OPEN_MODE_CLIENTS: 'loopback' }).openModeClients).toBe('loopback');
    const withKeys = loadConfig({ ...base, OPEN_MODE_CLIENTS: 'any', API_KEYS: 'open-mode-key-0123456789' });
    expect([withKeys.apiKeys.length, withKeys.openModeClients]).toEqual([1, 'any']);
  });

  it('refuses any other value at start, naming the variable and what it takes', () => {
    for (const value of ['everyone', 'ANY', 'true', '']) {
      let issues: string[] = [];
      try {
        loadConfig({ ...base, OPEN_MODE_CLIENTS: value });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues = err.issues;
      }
      expect(issues, value).toEqual([expect.stringMatching(/^OPEN_MODE_CLIENTS: .*"loopback"\|"any"/)]);
    }
  });
});
