import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { ProviderCheck } from '../../src/transcribe/types.ts';
import { createProviderValidator } from '../../src/validate/provider-validator.ts';

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

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

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
    const c = clock();
    const v = createProviderValidator({ provider: p, logger, now: c.now, okTtlMs: 300_000 });
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
    const c = clock();
    const v = createProviderValidator({ provider: p, logger, now: c.now, failTtlMs: 30_000 });
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
    const v = createProviderValidator({ provider: p, logger, checkTimeoutMs: 20 });
    const err = await rejection(v.check());
    expect(err.code).toBe('PROVIDER_UNAVAILABLE');
    expect(p.calls[0]?.aborted).toBe(true);
    expect(v.status()?.detail).toMatch(/timed out/);
  });

  it('reports the last answer through status() without calling the provider', async () => {
    const p = fakeProvider([ok]);
    const c = clock(5);
    const v = createProviderValidator({ provider: p, logger, now: c.now });
    expect(v.status()).toBeNull();
    await v.current();
    expect(v.status()).toEqual({ status: 'ok', detail: 'models listed', checkedAt: 5 });
    c.advance(10_000_000);
    expect(v.status()?.checkedAt).toBe(5);
    expect(p.calls).toHaveLength(1);
  });
});
