import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { ProviderCheck } from '../../src/transcribe/types.ts';
import { createProviderValidator } from '../../src/validate/provider-validator.ts';
import { manualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });

/** A provider whose answers are scripted and whose calls are counted; each call can be held open. */
function fakeProvider(answers: Array<ProviderCheck | Error>) {
  const calls: Array<AbortSignal | undefined> = [];
  let gate: Promise<void> = Promise.resolve();
  return {
    name: 'openai' as const,
    calls,
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
    async check(signal?: AbortSignal): Promise<ProviderCheck> {
      calls.push(signal);
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
      await gate;
      if (answer === undefined) throw new Error('no scripted answer');
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

/** Lets the answer of a check started by a timer land (its promise chain settles). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

const ok: ProviderCheck = { status: 'ok', detail: 'models listed' };
const down: ProviderCheck = { status: 'down', detail: 'connection refused', code: 'PROVIDER_UNAVAILABLE' };

describe('provider validator', () => {
  it('reuses an ok answer until the TTL has passed', async () => {
    const p = fakeProvider([ok]);
    const c = manualClock(1_000_000);
    // No refresh ahead of expiry here: what the TTL alone does.
    const v = createProviderValidator({ provider: p, logger, clock: c, okTtlMs: 300_000, refreshAheadMs: 0 });
    expect((await v.check()).cached).toBe(false);
    c.advance(299_999);
    expect((await v.check()).cached).toBe(true);
    expect(p.calls).toHaveLength(1);
    c.advance(1);
    expect((await v.check()).cached).toBe(false);
    expect(p.calls).toHaveLength(2);
  });

  it('caches a down answer for the shorter failure TTL and then notices recovery', async () => {
    const p = fakeProvider([down, ok]);
    const c = manualClock(1_000_000);
    const v = createProviderValidator({ provider: p, logger, clock: c, failTtlMs: 30_000 });
    const first = await rejection(v.check());
    expect(first.code).toBe('PROVIDER_UNAVAILABLE');
    expect(first.statusCode).toBe(503);
    expect(first.retryAfterS).toBe(30);
    c.advance(20_000);
    expect((await rejection(v.check())).retryAfterS).toBe(10);
    expect(p.calls).toHaveLength(1);
    c.advance(10_000);
    expect((await v.check()).status.status).toBe('ok');
    expect(p.calls).toHaveLength(2);
  });

  it('makes one provider call for concurrent checks', async () => {
    const p = fakeProvider([ok]);
    const release = p.hold();
    const v = createProviderValidator({ provider: p, logger });
    const all = Promise.all([v.check(), v.check(), v.check(), v.current()]);
    release();
    const [a, b, c, current] = await all;
    expect(p.calls).toHaveLength(1);
    expect([a.status.status, b.status.status, c.status.status, current.status]).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect([a.cached, b.cached, c.cached]).toEqual([false, false, false]);
  });

  it('answers 502 PROVIDER_AUTH for bad credentials, without Retry-After', async () => {
    const p = fakeProvider([{ status: 'down', detail: '401 invalid key', code: 'PROVIDER_AUTH' }]);
    const err = await rejection(createProviderValidator({ provider: p, logger }).check());
    expect(err.code).toBe('PROVIDER_AUTH');
    expect(err.statusCode).toBe(502);
    expect(err.retryAfterS).toBeUndefined();
    expect(err.message).not.toContain('401 invalid key');
  });

  it('maps any other down code to PROVIDER_UNAVAILABLE', async () => {
    const p = fakeProvider([{ status: 'down', detail: 'odd', code: 'INTERNAL' }]);
    expect((await rejection(createProviderValidator({ provider: p, logger }).check())).code).toBe(
      'PROVIDER_UNAVAILABLE',
    );
  });

  it('accepts jobs while the provider is degraded', async () => {
    const p = fakeProvider([{ status: 'degraded', detail: 'slow' }]);
    expect((await createProviderValidator({ provider: p, logger }).check()).status.status).toBe('degraded');
  });

  it('treats a throwing check as down and caches it', async () => {
    const p = fakeProvider([new Error('ECONNREFUSED')]);
    const v = createProviderValidator({ provider: p, logger });
    expect((await rejection(v.check())).code).toBe('PROVIDER_UNAVAILABLE');
    expect(v.status()).toMatchObject({ status: 'down', detail: expect.stringContaining('ECONNREFUSED') });
    await rejection(v.check());
    expect(p.calls).toHaveLength(1);
  });

  it('treats a check that outlasts the timeout as down and aborts it', async () => {
    const p = fakeProvider([ok]);
    p.hold(); // never released
    // A timer that fires early must not cut the check short: it is re-armed until the clock reaches the limit.
    const c = manualClock(0, { skewMs: -15 });
    const v = createProviderValidator({ provider: p, logger, clock: c, checkTimeoutMs: 20 });
    let settled = false;
    const refused = rejection(v.check()).finally(() => (settled = true));
    c.advance(19);
    await settle();
    expect(settled).toBe(false);
    c.advance(1);
    const err = await refused;
    expect(err.code).toBe('PROVIDER_UNAVAILABLE');
    expect(p.calls[0]?.aborted).toBe(true);
    expect(v.status()?.detail).toMatch(/timed out/);
  });

  it('reports the last answer through status() without calling the provider', async () => {
    const p = fakeProvider([ok]);
    const c = manualClock(5);
    const v = createProviderValidator({ provider: p, logger, clock: c });
    v.stop();
    expect(v.status()).toBeNull();
    await v.current();
    expect(v.status()).toEqual({ status: 'ok', detail: 'models listed', checkedAt: 5 });
    c.advance(10_000_000);
    expect(v.status()?.checkedAt).toBe(5);
    expect(p.calls).toHaveLength(1);
  });
  describe('kept warm', () => {
    const TTL = 300_000;
    const AHEAD = 30_000;
    const build = (answers: Array<ProviderCheck | Error>, skewMs = 0) => {
      const p = fakeProvider(answers);
      const c = manualClock(0, { skewMs });
      const v = createProviderValidator({ provider: p, logger, clock: c, okTtlMs: TTL, refreshAheadMs: AHEAD });
      return { p, c, v };
    };

    it('warm() starts one check and a check made meanwhile waits for it instead of asking again', async () => {
      const { p, v } = build([ok]);
      const release = p.hold();
      v.warm();
      v.warm();
      expect(p.calls).toHaveLength(1);
      const checked = v.check();
      release();
      expect((await checked).status.status).toBe('ok');
      v.warm(); // fresh: nothing to do
      expect(p.calls).toHaveLength(1);
      v.stop();
    });

    it('asks again in the background before a used ok answer expires, and checks never wait for it', async () => {
      const { p, c, v } = build([ok]);
      await v.check();
      c.advance(TTL - AHEAD - 1);
      expect(p.calls).toHaveLength(1);
      const release = p.hold();
      c.advance(1);
      expect(p.calls).toHaveLength(2);
      // The refresh is still out: the answer in hand is fresh and is used at once.
      expect((await v.check()).cached).toBe(true);
      release();
      await settle();
      expect(v.status()?.checkedAt).toBe(TTL - AHEAD);
      c.advance(AHEAD + 1);
      expect((await v.check()).cached).toBe(true);
      expect(p.calls).toHaveLength(2);
      v.stop();
    });

    it('re-arms a refresh timer that fires early instead of asking before time', async () => {
      const { p, c, v } = build([ok], -20_000);
      await v.check();
      c.advance(TTL - AHEAD - 10_000); // the timer has fired, 10 s short of its time
      expect(p.calls).toHaveLength(1);
      c.advance(10_000);
      expect(p.calls).toHaveLength(2);
      v.stop();
    });

    it('never serves an answer past its TTL when the refresh timer fires late', async () => {
      const { p, c, v } = build([ok], 60_000);
      await v.check();
      c.advance(TTL);
      expect(p.calls).toHaveLength(1);
      // Expired and not yet refreshed: the check asks in the foreground.
      expect((await v.check()).cached).toBe(false);
      expect(p.calls).toHaveLength(2);
      // The late timer of the old answer does nothing now.
      c.advance(AHEAD + 1);
      expect(p.calls).toHaveLength(2);
      v.stop();
    });

    it('lets an answer nobody used expire without asking again (an idle service does not poll)', async () => {
      const { p, c, v } = build([ok]);
      v.warm();
      await settle();
      c.advance(2 * TTL);
      expect(p.calls).toHaveLength(1);
      expect(c.pending()).toBe(0);
    });

    it('does not refresh a down answer in the background, and refuses at once while it holds', async () => {
      const { p, c, v } = build([down, ok]);
      expect((await rejection(v.check())).code).toBe('PROVIDER_UNAVAILABLE');
      c.advance(20_000);
      expect(p.calls).toHaveLength(1);
      expect((await rejection(v.check())).code).toBe('PROVIDER_UNAVAILABLE');
      expect(p.calls).toHaveLength(1);
    });

    it('stop() cancels the refresh', async () => {
      const { p, c, v } = build([ok]);
      await v.check();
      expect(c.pending()).toBe(1);
      v.stop();
      expect(c.pending()).toBe(0);
      c.advance(TTL);
      expect(p.calls).toHaveLength(1);
    });
  });
});
