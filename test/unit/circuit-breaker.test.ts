import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, createCircuitBreaker, type CircuitPermit } from '../../src/transcribe/circuit-breaker.ts';
import { manualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });

/** Settle state of a promise without waiting for it. */
async function peek<T>(p: Promise<T>): Promise<'pending' | 'resolved' | 'rejected'> {
  const marker = Symbol('pending');
  try {
    const v = await Promise.race([p, new Promise((r) => setImmediate(() => r(marker)))]);
    return v === marker ? 'pending' : 'resolved';
  } catch {
    return 'rejected';
  }
}

function setup(opts: { failureThreshold?: number; skewMs?: number } = {}) {
  const clock = manualClock(1_000_000, { skewMs: opts.skewMs ?? 0 });
  const breaker = createCircuitBreaker({
    name: 'openai',
    logger,
    failureThreshold: opts.failureThreshold ?? 3,
    coolDownMs: 10_000,
    fatalCoolDownMs: 60_000,
    clock,
  });
  return { clock, breaker };
}

const failOnce = async (breaker: ReturnType<typeof setup>['breaker']) =>
  (await breaker.admit()).fail({ reason: 'server-error' });

describe('circuit breaker', () => {
  it('stays closed below the threshold and a success resets the count', async () => {
    const { breaker } = setup();
    await failOnce(breaker);
    await failOnce(breaker);
    (await breaker.admit()).succeed();
    await failOnce(breaker);
    await failOnce(breaker);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('opens after the threshold of consecutive failures and holds callers while open', async () => {
    const { breaker } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_UNAVAILABLE', reason: 'server-error' });
    const waiting = breaker.admit();
    expect(await peek(waiting)).toBe('pending');
    expect(breaker.snapshot().waiting).toBe(1);
  });

  it('lets exactly one probe through after the cool-down; its success closes and admits the rest', async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    const a = breaker.admit();
    const b = breaker.admit();
    clock.advance(9_999);
    expect(await peek(a)).toBe('pending');
    clock.advance(1);
    const probe = await a;
    expect(probe.probe).toBe(true);
    expect(breaker.snapshot().state).toBe('half-open');
    expect(await peek(b)).toBe('pending');
    probe.succeed();
    expect((await b).probe).toBe(false);
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, reason: null });
  });

  it('re-opens when the probe fails, keeping the others waiting', async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    const a = breaker.admit();
    const b = breaker.admit();
    clock.advance(10_000);
    (await a).fail({ reason: 'connection' });
    expect(breaker.snapshot()).toMatchObject({ state: 'open', reason: 'connection' });
    expect(await peek(b)).toBe('pending');
    clock.advance(10_000);
    expect((await b).probe).toBe(true);
  });

  it('hands the probe to the next waiter when the probe is released without an outcome', async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    const a = breaker.admit();
    const b = breaker.admit();
    clock.advance(10_000);
    (await a).release();
    expect((await b).probe).toBe(true);
  });

  it('rejects waiting and new callers at once with PROVIDER_AUTH after an auth failure', async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    const waiting = breaker.admit();
    clock.advance(10_000);
    const probe: CircuitPermit = await waiting;
    const other = breaker.admit();
    expect(await peek(other)).toBe('pending');
    probe.fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    await expect(other).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(other).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
    await expect(breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH', waiting: 0 });
  });

  it('opens on a single fatal failure while closed and probes again after the fatal cool-down', async () => {
    const { breaker, clock } = setup({ failureThreshold: 100 });
    (await breaker.admit()).fail({ reason: 'quota-exhausted', open: true, code: 'PROVIDER_QUOTA' });
    await expect(breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_QUOTA' });
    clock.advance(59_999);
    await expect(breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_QUOTA' });
    clock.advance(1);
    const probe = await breaker.admit();
    expect(probe.probe).toBe(true);
    probe.succeed();
    expect(breaker.snapshot().state).toBe('closed');
  });

  it('does not downgrade a fatal opening when a plain fault arrives later', async () => {
    const { breaker } = setup({ failureThreshold: 1 });
    const stale = await breaker.admit();
    (await breaker.admit()).fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    stale.fail({ reason: 'server-error' });
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH' });
  });

  it('rejects a waiting caller with the abort reason when its signal aborts', async () => {
    const { breaker } = setup();
    for (let i = 0; i < 3; i++) await failOnce(breaker);
    const ac = new AbortController();
    const waiting = breaker.admit(ac.signal);
    ac.abort(new Error('job cancelled'));
    await expect(waiting).rejects.toThrow('job cancelled');
    expect(breaker.snapshot().waiting).toBe(0);
  });

  it('ignores a second outcome on the same permit', async () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const permit = await breaker.admit();
    permit.fail({ reason: 'server-error' });
    permit.fail({ reason: 'server-error' });
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
  });

  describe('with timers that fire early or late against the clock', () => {
    it.each([-1, -2_000])(
      'admits the waiter once the cool-down is over, not before, when its timer fires early (skew %i ms)',
      async (skewMs) => {
        const { breaker, clock } = setup({ skewMs });
        for (let i = 0; i < 3; i++) await failOnce(breaker);
        const a = breaker.admit();
        // The timer fires before 10 000 ms, while the clock still says the cool-down is not over.
        clock.advance(9_999);
        expect(await peek(a)).toBe('pending');
        expect(breaker.snapshot()).toMatchObject({ state: 'open', waiting: 1 });
        clock.advance(1);
        expect(await peek(a)).toBe('resolved');
        expect((await a).probe).toBe(true);
        expect(clock.pending()).toBe(0);
      },
    );

    it('probes again after a failed probe re-opened it, with early timers', async () => {
      const { breaker, clock } = setup({ skewMs: -1 });
      for (let i = 0; i < 3; i++) await failOnce(breaker);
      const a = breaker.admit();
      const b = breaker.admit();
      clock.advance(10_000);
      expect(await peek(a)).toBe('resolved');
      (await a).fail({ reason: 'connection' });
      expect(breaker.snapshot()).toMatchObject({ state: 'open', waiting: 1 });
      clock.advance(9_999);
      expect(await peek(b)).toBe('pending');
      clock.advance(1);
      expect(await peek(b)).toBe('resolved');
      const probe = await b;
      expect(probe.probe).toBe(true);
      probe.succeed();
      expect(breaker.snapshot()).toMatchObject({ state: 'closed', waiting: 0 });
      expect(clock.pending()).toBe(0);
    });

    it('admits the waiter when its timer fires late', async () => {
      const { breaker, clock } = setup({ skewMs: 250 });
      for (let i = 0; i < 3; i++) await failOnce(breaker);
      const a = breaker.admit();
      clock.advance(10_250);
      expect(await peek(a)).toBe('resolved');
      expect((await a).probe).toBe(true);
      expect(clock.pending()).toBe(0);
    });
  });
});
