import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRateLimiter, MAX_PAUSE_MS, type RateLimiter } from '../../src/transcribe/rate-limiter.ts';
import type { Clock } from '../../src/transcribe/backoff.ts';
import { manualClock } from '../support/manual-clock.ts';
import { until } from '../support/until.ts';

// Real bottleneck underneath. Assertions are on counts and order; waits only let the event loop turn.
const logger = pino({ level: 'silent' });
/** Effectively no refill during a test: one token every 10 minutes. */
const NO_REFILL_RPM = 0.1;

/** Let bottleneck's chain of zero-delay timers run out, so anything that could start has started. */
async function settle(turns = 40): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Every gate ever opened, so cleanup can let running tasks finish (stop() waits for them). */
const allGates: Array<() => void> = [];

/** Tasks that record when they start and finish only when released. */
function taskRecorder() {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const task = (name: string) => () =>
    new Promise<string>((resolve) => {
      started.push(name);
      gates.set(name, () => resolve(name));
      allGates.push(() => resolve(name));
    });
  const release = (name: string) => gates.get(name)?.();
  return { started, task, release };
}

const limiters: RateLimiter[] = [];
function make(opts: { rpm: number; burst: number; maxInFlight: number; clock?: Clock; logger?: Logger }): RateLimiter {
  const limiter = createRateLimiter({ logger, ...opts });
  limiters.push(limiter);
  return limiter;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const open of allGates.splice(0)) open();
  await Promise.all(limiters.splice(0).map((l) => l.stop()));
});

const HOUR_MS = 3_600_000;

/** Date.now() (what bottleneck reads), moved by the test; performance.now() keeps running as it does. */
function steppableWallClock() {
  const real = Date.now.bind(Date);
  let offsetMs = 0;
  vi.spyOn(Date, 'now').mockImplementation(() => real() + offsetMs);
  return {
    step(ms: number) {
      offsetMs += ms;
    },
  };
}

/** A logger whose messages the test can wait for. */
function recordingLogger() {
  const messages: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void messages.push(JSON.parse(line).msg as string) });
  return { log, messages };
}

describe('rate limiter', () => {
  it('starts only burst tasks at once when the refill is slow', async () => {
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 2, maxInFlight: 10 });
    const { started, task, release } = taskRecorder();
    const results = ['a', 'b', 'c', 'd', 'e'].map((n) => limiter.schedule(task(n)));
    results.forEach((p) => p.catch(() => undefined));
    await until(() => started.length === 2, '2 tasks started', { everyMs: 1 });
    await settle();
    expect(started).toEqual(['a', 'b']);
    expect(await limiter.stats()).toEqual({ queued: 3, running: 2, tokens: 0, pausedUntil: null });
    release('a');
    release('b');
    await expect(Promise.all(results.slice(0, 2))).resolves.toEqual(['a', 'b']);
    await settle();
    // Finishing frees in-flight slots, not tokens.
    expect(started).toHaveLength(2);
  });

  it('refills the bucket and starts the rest in submission order', async () => {
    const limiter = make({ rpm: 600, burst: 1, maxInFlight: 10 });
    const order: number[] = [];
    const results = [0, 1, 2].map((i) => limiter.schedule(async () => void order.push(i)));
    await Promise.all(results);
    expect(order).toEqual([0, 1, 2]);
  });

  it('never runs more than maxInFlight tasks at once', async () => {
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 5, maxInFlight: 1 });
    const { started, task, release } = taskRecorder();
    const first = limiter.schedule(task('a'));
    const second = limiter.schedule(task('b'));
    await until(() => started.length === 1, '1 task started', { everyMs: 1 });
    await settle();
    expect(started).toEqual(['a']);
    release('a');
    await first;
    await until(() => started.length === 2, '2 tasks started', { everyMs: 1 });
    release('b');
    await expect(second).resolves.toBe('b');
  });

  it('holds every task during pauseFor, tokens or not, and resumes when the pause ends', async () => {
    const clock = manualClock(1_000_000);
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 10, clock });
    const { started, task } = taskRecorder();
    void limiter.schedule(task('a')).catch(() => undefined);
    await until(() => started.length === 1, '1 task started', { everyMs: 1 });
    expect((await limiter.stats()).tokens).toBe(2);

    limiter.pauseFor(1000, 'retry-after');
    for (const n of ['b', 'c']) void limiter.schedule(task(n)).catch(() => undefined);
    await settle();
    expect(started).toEqual(['a']);
    expect(await limiter.stats()).toMatchObject({ queued: 2, tokens: 0, pausedUntil: clock.now() + 1000 });

    clock.advance(1000);
    await until(() => started.length === 3, '3 tasks started', { everyMs: 1 });
    expect(started).toEqual(['a', 'b', 'c']);
    expect(await limiter.stats()).toMatchObject({ queued: 0, tokens: 0, pausedUntil: null });
  });

  it.each([-1, -400])(
    'holds the pause until the clock says it is over, with the resume timer firing early (skew %i ms)',
    async (skewMs) => {
      const clock = manualClock(1_000_000, { skewMs });
      const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 10, clock });
      const { started, task } = taskRecorder();
      const end = clock.now() + 1000;
      limiter.pauseFor(1000, 'retry-after');
      void limiter.schedule(task('a')).catch(() => undefined);
      clock.advance(999);
      await settle();
      expect(started).toEqual([]);
      expect((await limiter.stats()).pausedUntil).toBe(end);

      clock.advance(1);
      await until(() => started.length === 1, '1 task started', { everyMs: 1 });
      expect(await limiter.stats()).toMatchObject({ pausedUntil: null });
      expect(clock.pending()).toBe(0);
    },
  );

  it('keeps a pause in force while bottleneck refills the bucket, and keeps the refill afterwards', async () => {
    const clock = manualClock(1_000_000);
    // 25 tokens per 250 ms heartbeat: "reservoir = 0" alone would be undone at the next beat.
    const limiter = make({ rpm: 6000, burst: 2, maxInFlight: 10, clock });
    const { started, task } = taskRecorder();
    limiter.pauseFor(60_000, 'retry-after');
    for (const n of ['a', 'b', 'c']) void limiter.schedule(task(n)).catch(() => undefined);
    // Let several real heartbeats pass; what is asserted is that nothing started, not how long it took.
    await new Promise((r) => setTimeout(r, 800));
    await settle();
    expect(started).toEqual([]);

    clock.advance(60_000);
    await until(() => started.length === 3, '3 tasks started', { everyMs: 1 });
  });

  it('keeps the latest end when pauses overlap', async () => {
    const clock = manualClock(1_000_000);
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 10, clock });
    const { started, task } = taskRecorder();
    const t0 = clock.now();
    limiter.pauseFor(1000, 'first');
    limiter.pauseFor(500, 'shorter: ignored');
    expect((await limiter.stats()).pausedUntil).toBe(t0 + 1000);
    void limiter.schedule(task('a')).catch(() => undefined);

    clock.advance(500);
    limiter.pauseFor(2000, 'longer: extends');
    clock.advance(500);
    await settle();
    expect(started).toEqual([]);
    expect((await limiter.stats()).pausedUntil).toBe(t0 + 2500);

    clock.advance(1500);
    await until(() => started.length === 1, '1 task started', { everyMs: 1 });
  });

  it('caps a provider pause at MAX_PAUSE_MS: a hint of 9999 h holds the jobs 15 min, not for good', async () => {
    const clock = manualClock(1_000_000);
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 10, clock });
    const { started, task } = taskRecorder();
    const t0 = clock.now();
    limiter.pauseFor(9999 * 3600_000, 'x-ratelimit-reset-requests: 9999h');
    expect((await limiter.stats()).pausedUntil).toBe(t0 + MAX_PAUSE_MS);
    void limiter.schedule(task('a')).catch(() => undefined);
    clock.advance(MAX_PAUSE_MS - 1);
    await settle();
    expect(started).toEqual([]);
    clock.advance(1);
    await until(() => started.length === 1, 'the task to start when the capped pause ended', { everyMs: 1 });
  });

  it('lets an aborted waiting task leave at once without spending a token', async () => {
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 1 });
    const { started, task, release } = taskRecorder();
    const a = limiter.schedule(task('a'));
    await until(() => started.length === 1, '1 task started', { everyMs: 1 });
    const ac = new AbortController();
    let bRan = false;
    const b = limiter.schedule(async () => void (bRan = true), { signal: ac.signal });
    const c = limiter.schedule(task('c'));
    ac.abort(new Error('job cancelled'));
    await expect(b).rejects.toThrow('job cancelled');
    expect((await limiter.stats()).queued).toBe(1);

    release('a');
    await a;
    await until(() => started.length === 2, '2 tasks started', { everyMs: 1 });
    release('c');
    await c;
    await settle();
    expect(bRan).toBe(false);
    // a and c spent one token each; b's was handed back.
    expect((await limiter.stats()).tokens).toBe(1);
  });

  it('rejects an already aborted signal without queueing', async () => {
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 1, maxInFlight: 1 });
    await expect(limiter.schedule(async () => 1, { signal: AbortSignal.abort(new Error('gone')) })).rejects.toThrow(
      'gone',
    );
    expect((await limiter.stats()).tokens).toBe(1);
  });

  it('stop drops waiting tasks with CANCELLED, lets running ones finish and refuses new ones', async () => {
    const limiter = make({ rpm: NO_REFILL_RPM, burst: 1, maxInFlight: 1 });
    const { started, task, release } = taskRecorder();
    const running = limiter.schedule(task('a'));
    const waiting = limiter.schedule(task('b'));
    await until(() => started.length === 1, '1 task started', { everyMs: 1 });
    const stopped = limiter.stop();
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(limiter.schedule(task('c'))).rejects.toMatchObject({ code: 'CANCELLED' });
    release('a');
    await expect(running).resolves.toBe('a');
    await stopped;
    expect(started).toEqual(['a']);
  });

  describe('after the wall clock steps', () => {
    it('sees that Date.now() moves with the test and performance.now() does not', () => {
      const wall = steppableWallClock();
      const before = Date.now() - performance.now();
      wall.step(-HOUR_MS);
      expect(Date.now() - performance.now()).toBeLessThan(before - HOUR_MS / 2);
    });

    it.each([
      ['sent at once', 0],
      ['sent when a pause begun before the step ends', 50],
    ])('still starts a request scheduled after a step back: %s', async (_, pauseMs) => {
      // One token per 10 ms, so the second request waits for the refill.
      const limiter = make({ rpm: 6000, burst: 1, maxInFlight: 2 });
      await limiter.schedule(() => Promise.resolve('first'));
      if (pauseMs > 0) limiter.pauseFor(pauseMs, 'HTTP 429');
      steppableWallClock().step(-HOUR_MS);
      // Before the fix the start waited for the wall clock to catch up: an hour, far past until's 60 s.
      let sent = false;
      const second = limiter.schedule(() => Promise.resolve((sent = true)));
      await until(() => sent, 'the request after the step to start', { everyMs: 5 });
      await expect(second).resolves.toBe(true);
    });

    it('starts each task queued before a step back exactly once, its token handed back', async () => {
      const { log, messages } = recordingLogger();
      // Three tokens and no refill: a task that cost two would leave the last one waiting for good.
      const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 1, logger: log });
      const { started, task, release } = taskRecorder();
      const results = ['a', 'b', 'c'].map((n) => limiter.schedule(task(n)));
      await until(() => started.length === 1, 'a to start', { everyMs: 1 });
      steppableWallClock().step(-HOUR_MS);
      // a's end lets bottleneck give b its token and a start an hour away; the limiter's own check finds the step.
      release('a');
      await until(() => messages.includes('wall clock stepped back: rate limiter rebuilt'), 'the rebuild');
      await until(() => started.length === 2, 'b to start', { everyMs: 1 });
      release('b');
      await until(() => started.length === 3, 'c to start', { everyMs: 1 });
      release('c');
      await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c']);
      await settle();
      expect(started).toEqual(['a', 'b', 'c']);
      expect(await limiter.stats()).toEqual({ queued: 0, running: 0, tokens: 0, pausedUntil: null });
    });

    /** One slot, no refill: a runs, b waits; then the wall clock steps back an hour and c's schedule finds it. */
    async function stepBackBehindRunningTask(burst: number) {
      const { log, messages } = recordingLogger();
      const limiter = make({ rpm: NO_REFILL_RPM, burst, maxInFlight: 1, logger: log });
      const recorder = taskRecorder();
      const a = limiter.schedule(recorder.task('a'));
      const b = limiter.schedule(recorder.task('b'));
      await until(() => recorder.started.length === 1, 'a to start', { everyMs: 1 });
      steppableWallClock().step(-HOUR_MS);
      const c = limiter.schedule(recorder.task('c'));
      return { limiter, messages, ...recorder, a, b, c };
    }

    it('keeps maxInFlight across a rebuild while a task of the old bottleneck still runs', async () => {
      const { limiter, messages, started, release, a, b, c } = await stepBackBehindRunningTask(3);
      await until(() => messages.includes('wall clock stepped back: rate limiter rebuilt'), 'the rebuild');
      await settle();
      // The new bottleneck has a free slot of its own; a still holds the only one.
      expect(started).toEqual(['a']);
      expect(await limiter.stats()).toMatchObject({ queued: 2, running: 1 });
      release('a');
      await until(() => started.length === 2, 'b to start', { everyMs: 1 });
      await settle();
      expect(started).toEqual(['a', 'b']);
      release('b');
      await until(() => started.length === 3, 'c to start', { everyMs: 1 });
      release('c');
      await expect(Promise.all([a, b, c])).resolves.toEqual(['a', 'b', 'c']);
      expect(started).toEqual(['a', 'b', 'c']);
    });

    it('rejects every task with CANCELLED when stop() comes while a rebuild is under way, and stops', async () => {
      const { limiter, started, release, a, b, c } = await stepBackBehindRunningTask(1);
      // c's schedule queued the rebuild; stop() comes before the rebuild has read the reservoir.
      const stopped = limiter.stop();
      await expect(b).rejects.toMatchObject({ code: 'CANCELLED' });
      await expect(c).rejects.toMatchObject({ code: 'CANCELLED' });
      release('a');
      await expect(a).resolves.toBe('a');
      await stopped;
      expect(started).toEqual(['a']);
    });

    it('lets a task aborted while the rebuild runs leave without starting or spending a token', async () => {
      const { log, messages } = recordingLogger();
      const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 1, logger: log });
      const { started, task, release } = taskRecorder();
      const a = limiter.schedule(task('a'));
      await until(() => started.length === 1, 'a to start', { everyMs: 1 });
      const ac = new AbortController();
      const b = limiter.schedule(task('b'), { signal: ac.signal });
      steppableWallClock().step(-HOUR_MS);
      const c = limiter.schedule(task('c'));
      ac.abort(new Error('job cancelled'));
      await expect(b).rejects.toThrow('job cancelled');
      await until(() => messages.includes('wall clock stepped back: rate limiter rebuilt'), 'the rebuild');
      release('a');
      await until(() => started.length === 2, 'c to start', { everyMs: 1 });
      release('c');
      await expect(Promise.all([a, c])).resolves.toEqual(['a', 'c']);
      await settle();
      expect(started).toEqual(['a', 'c']);
      expect(await limiter.stats()).toEqual({ queued: 0, running: 0, tokens: 1, pausedUntil: null });
    });

    it('keeps a pause across a rebuild, then starts each waiting task once, granting no token', async () => {
      const { log, messages } = recordingLogger();
      const clock = manualClock(1_000_000);
      const limiter = make({ rpm: NO_REFILL_RPM, burst: 3, maxInFlight: 10, clock, logger: log });
      const { started, task } = taskRecorder();
      void limiter.schedule(task('a')).catch(() => undefined);
      await until(() => started.length === 1, 'a to start', { everyMs: 1 });
      limiter.pauseFor(60_000, 'HTTP 429');
      for (const n of ['b', 'c', 'd']) void limiter.schedule(task(n)).catch(() => undefined);
      const wall = steppableWallClock();
      // Two steps back in a row: two rebuilds, each carrying the pause.
      wall.step(-HOUR_MS);
      void limiter.schedule(task('e')).catch(() => undefined);
      await until(() => messages.includes('wall clock stepped back: rate limiter rebuilt'), 'the first rebuild');
      wall.step(-HOUR_MS);
      void limiter.schedule(task('f')).catch(() => undefined);
      await until(
        () => messages.filter((m) => m === 'wall clock stepped back: rate limiter rebuilt').length === 2,
        'the second rebuild',
      );
      await settle();
      expect(started).toEqual(['a']);
      expect(await limiter.stats()).toMatchObject({ queued: 5, running: 1, tokens: 0 });
      clock.advance(60_000);
      // Two tokens were left: b and c start, d, e and f wait for the refill.
      await until(() => started.length === 3, 'b and c to start', { everyMs: 1 });
      await settle();
      expect(started).toEqual(['a', 'b', 'c']);
      expect(await limiter.stats()).toEqual({ queued: 3, running: 3, tokens: 0, pausedUntil: null });
    });

    it('grants no tokens for a step forward, nor for the step back that undoes it', async () => {
      const { log, messages } = recordingLogger();
      const limiter = make({ rpm: NO_REFILL_RPM, burst: 2, maxInFlight: 10, logger: log });
      const { started, task } = taskRecorder();
      for (const n of ['a', 'b', 'c']) void limiter.schedule(task(n)).catch(() => undefined);
      await until(() => started.length === 2, 'a and b to start', { everyMs: 1 });
      const wall = steppableWallClock();
      wall.step(HOUR_MS);
      // Several heartbeats and step checks pass; what is asserted is that nothing started, not how long it took.
      await new Promise((r) => setTimeout(r, 1200));
      await settle();
      expect(started).toEqual(['a', 'b']);
      wall.step(-HOUR_MS);
      void limiter.schedule(task('d')).catch(() => undefined);
      await until(() => messages.includes('wall clock stepped back: rate limiter rebuilt'), 'the rebuild');
      await settle();
      expect(started).toEqual(['a', 'b']);
      expect(await limiter.stats()).toMatchObject({ queued: 2, running: 2, tokens: 0 });
    });
  });
});
