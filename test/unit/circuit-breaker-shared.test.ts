import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../../src/transcribe/circuit-breaker.ts';
import { PROBE_HOLD_MS, type CircuitOpening, type SharedCircuit } from '../../src/transcribe/circuit-share.ts';
import { manualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });
const T0 = 1_000_000;

/** Lets promise callbacks run (the probe claim is answered asynchronously). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

async function peek<T>(p: Promise<T>): Promise<'pending' | 'settled'> {
  const marker = Symbol('pending');
  const v = await Promise.race([p.catch(() => undefined), settle().then(() => marker)]);
  return v === marker ? 'pending' : 'settled';
}

type Mirror = Parameters<SharedCircuit['follow']>[0];

/** The shared state as the breaker sees it: what it published, and a handle to play another host's messages. */
function fakeShared() {
  const published: Array<Parameters<SharedCircuit['publish']>[0]> = [];
  let mirror: Mirror | undefined;
  /** The answers to this host's probe claims, in order (true when the list runs out); the periods claimed. */
  const claims = { answers: [] as boolean[], asked: 0, periods: [] as string[] };
  const shared: SharedCircuit = {
    publish: (change) => void published.push(change),
    follow: (m) => {
      mirror = m;
    },
    claimProbe: async (id, holdMs) => {
      expect(holdMs).toBe(PROBE_HOLD_MS);
      claims.asked += 1;
      claims.periods.push(id);
      return claims.answers.shift() ?? true;
    },
  };
  const other = () => {
    if (!mirror) throw new Error('the breaker did not follow the shared state');
    return mirror;
  };
  return { shared, published, other, claims };
}

/** `wallOffsetMs`: this host's wall clock is that far off the other hosts' (else one clock serves for both). */
function setup(skewMs = 0, wallOffsetMs?: number) {
  const clock = manualClock(T0, { skewMs });
  const { shared, published, other, claims } = fakeShared();
  const breaker = createCircuitBreaker({
    name: 'openai',
    logger,
    failureThreshold: 2,
    coolDownMs: 10_000,
    fatalCoolDownMs: 60_000,
    clock,
    ...(wallOffsetMs === undefined ? {} : { wallClock: manualClock(T0 + wallOffsetMs) }),
    shared,
  });
  return { clock, breaker, published, other, claims };
}

/** An opening as this breaker makes it (any id) or as another host's, named after its kind and time. */
const auth = (at: number, id: unknown = `auth-${at}`): CircuitOpening => ({
  id: id as string,
  code: 'PROVIDER_AUTH',
  reason: 'auth',
  openedAt: at,
  retryAt: at + 60_000,
});
const down = (at: number, id: unknown = `down-${at}`): CircuitOpening => ({
  id: id as string,
  code: 'PROVIDER_UNAVAILABLE',
  reason: 'server-error',
  openedAt: at,
  retryAt: at + 10_000,
});

describe('circuit breaker shared with other hosts', () => {
  it("publishes what it learns: a fatal answer at once, the threshold's open, and the probe's close", async () => {
    const { clock, breaker, published } = setup();
    (await breaker.admit()).fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    expect(published).toEqual([{ open: auth(T0, expect.any(String)) }]);
    const first = published[0] && 'open' in published[0] ? published[0].open.id : null;
    clock.advance(60_000);
    const probe = await breaker.admit();
    expect(probe.probe).toBe(true);
    probe.succeed();
    // The close names the open period its probe was for.
    expect(published.at(-1)).toEqual({ closedAt: T0 + 60_000, id: first });
    (await breaker.admit()).fail({ reason: 'server-error' });
    expect(published).toHaveLength(2);
    (await breaker.admit()).fail({ reason: 'server-error' });
    expect(published.at(-1)).toEqual({ open: down(T0 + 60_000, expect.any(String)) });
    // Each open is a period of its own.
    expect(published.at(-1)).not.toMatchObject({ open: { id: first } });
  });

  it("turns callers away with another host's fatal code, without a call of its own, until its cool-down ends", async () => {
    const { clock, breaker, published, other } = setup();
    const waiting = breaker.admit();
    other().opened(auth(T0));
    await expect(breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH', name: 'CircuitOpenError' });
    // A caller admitted before the news keeps its permit: it went before anyone knew.
    await expect(waiting).resolves.toMatchObject({ probe: false });
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH', retryAt: T0 + 60_000 });
    // Mirrored, not re-published.
    expect(published).toEqual([]);
    clock.advance(60_000);
    await expect(breaker.admit()).resolves.toMatchObject({ probe: true });
  });

  it("holds callers while another host's provider fault is open, and frees them at that host's close", async () => {
    const { clock, breaker, other } = setup();
    other().opened(down(T0));
    let admitted = false;
    const held = breaker.admit().then((p) => {
      admitted = true;
      return p;
    });
    clock.advance(1_000);
    await Promise.resolve();
    expect(admitted).toBe(false);
    // A close said before this open is about an older one.
    other().closed(T0 - 1);
    expect(breaker.snapshot().state).toBe('open');
    other().closed(T0 + 1_000);
    await expect(held).resolves.toMatchObject({ probe: false });
    expect(breaker.snapshot().state).toBe('closed');
  });

  it("ignores an opening whose cool-down has passed, and a plain fault's opening while a fatal one holds", async () => {
    const { clock, breaker, other } = setup();
    clock.advance(20_000);
    other().opened(down(T0));
    expect(breaker.snapshot().state).toBe('closed');
    other().opened(auth(T0 + 20_000));
    other().opened(down(T0 + 20_000));
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH' });
  });

  it("reaches half-open at another host's retryAt even when its timer fires early", async () => {
    const { clock, breaker, other } = setup(-5);
    other().opened(down(T0));
    const held = breaker.admit();
    clock.advance(9_999);
    expect(breaker.snapshot().state).toBe('open');
    clock.advance(1);
    await expect(held).resolves.toMatchObject({ probe: true });
  });

  it('sends the half-open probe only when it claimed the probe of every host; otherwise waits for that host', async () => {
    const { clock, breaker, other, claims } = setup();
    other().opened(down(T0));
    claims.answers.push(false);
    const held = breaker.admit();
    clock.advance(10_000);
    await settle();
    expect(claims.periods).toEqual([down(T0).id]);
    expect(await peek(held)).toBe('pending');
    // A second caller does not ask again while the other host's claim holds.
    const second = breaker.admit();
    await settle();
    expect(claims.asked).toBe(1);
    // The other host's probe succeeded: everyone goes, none of them as a probe.
    other().closed(T0 + 10_500);
    await expect(held).resolves.toMatchObject({ probe: false });
    await expect(second).resolves.toMatchObject({ probe: false });
  });

  it("asks again for the probe when another host's claim ran out without news (that host died mid-probe)", async () => {
    const { clock, breaker, other, claims } = setup(-5);
    other().opened(down(T0));
    claims.answers.push(false);
    const held = breaker.admit();
    clock.advance(10_000);
    await settle();
    clock.advance(PROBE_HOLD_MS - 1);
    await settle();
    expect(claims.asked).toBe(1);
    expect(await peek(held)).toBe('pending');
    clock.advance(1);
    await expect(held).resolves.toMatchObject({ probe: true });
    expect(claims.asked).toBe(2);
  });

  describe("another host's open against a wall clock that disagrees", () => {
    const HOUR_MS = 3_600_000;

    it.each([
      ['this host stepped back an hour', -HOUR_MS, down(T0)],
      ['the opener a year ahead', 0, { ...down(T0), retryAt: T0 + 365 * 24 * HOUR_MS }],
    ])('waits at most its own cool-down for the code (%s)', async (_, wallOffsetMs, opening) => {
      const { clock, breaker, other } = setup(0, wallOffsetMs);
      other().opened(opening);
      const held = breaker.admit();
      clock.advance(9_999);
      expect(await peek(held)).toBe('pending');
      // Before the fix the wait was the opener's retryAt on this host's wall clock: an hour, or a year, longer.
      clock.advance(1);
      expect(await peek(held)).toBe('settled');
      await expect(held).resolves.toMatchObject({ probe: true });
    });

    it("keeps a fatal open's longer cool-down", async () => {
      const { clock, breaker, other } = setup(0, -HOUR_MS);
      other().opened(auth(T0));
      clock.advance(59_999);
      await expect(breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
      clock.advance(1);
      await expect(breaker.admit()).resolves.toMatchObject({ probe: true });
    });
  });
});
