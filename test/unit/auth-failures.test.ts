import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { authFailures } from '../../src/http/auth-failures.ts';
import { clientOf } from '../../src/http/client-address.ts';
import { manualClock } from '../support/manual-clock.ts';

const A = '198.18.0.1';
const B = '198.18.0.2';
const C = '198.18.0.3';

describe('authFailures', () => {
  it('locks an address out after perMinute failures, for the rest of the minute that began with the first', () => {
    const clock = manualClock(1_000);
    const failures = authFailures({ perMinute: 3, now: clock.now });
    failures.failed(A, 'v1');
    clock.advance(10_000);
    failures.failed(A, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
    failures.failed(A, 'v1');
    // The window began at the first failure (t = 1 000) and ends 60 s later.
    expect(failures.lockedFor(A)).toBe(50_000);
    expect(failures.lockedFor(B)).toBeNull();
    clock.advance(49_999);
    expect(failures.lockedFor(A)).toBe(1);
    clock.advance(1);
    expect(failures.lockedFor(A)).toBeNull();
    // A new window: its count starts again.
    failures.failed(A, 'v1');
    failures.failed(A, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
    failures.failed(A, 'v1');
    expect(failures.lockedFor(A)).toBe(60_000);
  });

  it("counts an IPv6 client's whole /64 as one client, and an IPv4-mapped address as its IPv4 one", () => {
    const clock = manualClock();
    const failures = authFailures({ perMinute: 3, now: clock.now });
    // Three guesses from three addresses of one /64 (privacy addresses rotate there at will).
    failures.failed('2001:db8:1:2::1', 'v1');
    failures.failed('2001:db8:1:2:abcd::5', 'metrics');
    failures.failed('2001:0db8:0001:0002:ffff:ffff:ffff:fffe', 'health');
    expect(failures.lockedFor('2001:db8:1:2:9::9')).toBe(60_000);
    expect(failures.lockedFor('2001:db8:1:3::1')).toBeNull();
    failures.failed('::ffff:198.18.0.9', 'v1');
    failures.failed('198.18.0.9', 'v1');
    failures.failed('::FFFF:198.18.0.9', 'v1');
    expect(failures.lockedFor('198.18.0.9')).toBe(60_000);
    expect(failures.lockedFor('198.18.0.10')).toBeNull();
    expect(clientOf('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(clientOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientOf('64:ff9b::198.18.0.1')).toBe('64:ff9b:0:0::/64');
    expect(clientOf('not an address')).toBe('not an address');
  });

  it('says so once per address and window when the limit is reached, with how long it holds', () => {
    const clock = manualClock();
    const told: Array<[string, number]> = [];
    const failures = authFailures({ perMinute: 2, now: clock.now, onLockout: (a, ms) => told.push([a, ms]) });
    failures.failed(A, 'v1');
    clock.advance(5_000);
    failures.failed(A, 'v1');
    failures.failed(A, 'v1');
    failures.failed(B, 'v1');
    expect(told).toEqual([[A, 55_000]]);
    clock.advance(55_000);
    failures.failed(A, 'v1');
    failures.failed(A, 'v1');
    expect(told).toEqual([
      [A, 55_000],
      [A, 60_000],
    ]);
    // A limit of one: the first failure is the lockout.
    const once: string[] = [];
    authFailures({ perMinute: 1, now: clock.now, onLockout: (a) => once.push(a) }).failed(C, 'v1');
    expect(once).toEqual([C]);
  });

  it('counts each address alone', () => {
    const clock = manualClock();
    const failures = authFailures({ perMinute: 2, now: clock.now });
    failures.failed(A, 'v1');
    failures.failed(B, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
    expect(failures.lockedFor(B)).toBeNull();
    failures.failed(B, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
    expect(failures.lockedFor(B)).toBe(60_000);
  });

  it('tracks at most maxAddresses, forgetting the one whose window began first', () => {
    const clock = manualClock();
    const failures = authFailures({ perMinute: 1, now: clock.now, maxAddresses: 2 });
    failures.failed(A, 'v1');
    clock.advance(1);
    failures.failed(B, 'v1');
    expect(failures.lockedFor(A)).toBe(59_999);
    expect(failures.lockedFor(B)).toBe(60_000);
    clock.advance(1);
    failures.failed(C, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
    expect(failures.lockedFor(B)).toBe(59_999);
    expect(failures.lockedFor(C)).toBe(60_000);
  });

  it('orders by window start: an address whose window ended and began again is the newest', () => {
    const clock = manualClock();
    const failures = authFailures({ perMinute: 1, now: clock.now, maxAddresses: 2 });
    failures.failed(A, 'v1');
    clock.advance(1);
    failures.failed(B, 'v1');
    clock.advance(60_000);
    failures.failed(A, 'v1');
    failures.failed(C, 'v1');
    expect(failures.lockedFor(B)).toBeNull();
    expect(failures.lockedFor(A)).toBe(60_000);
    expect(failures.lockedFor(C)).toBe(60_000);
  });

  it('never locks anyone out with perMinute 0', () => {
    const clock = manualClock();
    const failures = authFailures({ perMinute: 0, now: clock.now });
    for (let i = 0; i < 100; i++) failures.failed(A, 'v1');
    expect(failures.lockedFor(A)).toBeNull();
  });

  it('tells of every failure, the limit off too, and of each lockout with the check that reached the limit', () => {
    const clock = manualClock();
    const told: string[] = [];
    const onFailure = (check: string) => told.push(`failed ${check}`);
    const off = authFailures({ perMinute: 0, now: clock.now, onFailure });
    off.failed(A, 'metrics');
    expect(told).toEqual(['failed metrics']);
    const on = authFailures({
      perMinute: 2,
      now: clock.now,
      onFailure,
      onLockout: (address, _ms, check) => told.push(`locked ${address} ${check}`),
    });
    on.failed(A, 'v1');
    on.failed(A, 'health');
    expect(told).toEqual(['failed metrics', 'failed v1', 'failed health', `locked ${A} health`]);
  });
});

describe('AUTH_FAILURES_PER_MINUTE', () => {
  const base = { DATA_DIR: '/nonexistent-cs-data', TRANSCRIBE_PROVIDER: 'local' };

  it('defaults to 30, takes 0 (off), and refuses a value that is not a count by name at start', () => {
    expect(loadConfig(base).authFailuresPerMinute).toBe(30);
    expect(loadConfig({ ...base, AUTH_FAILURES_PER_MINUTE: '0' }).authFailuresPerMinute).toBe(0);
    for (const value of ['-1', '1.5', 'many', '1000001']) {
      expect(() => loadConfig({ ...base, AUTH_FAILURES_PER_MINUTE: value }), value).toThrow(/AUTH_FAILURES_PER_MINUTE/);
    }
  });
});
