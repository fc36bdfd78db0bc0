import type { Clock } from '../../src/transcribe/backoff.ts';

export interface ManualClockOptions {
  /**
   * When a timer fires relative to the time it was set for, in ms. Negative: early, while now() is still short of
   * it, as Node's timers do against Date.now(); positive: late, as on a busy event loop. A timer set for 1 ms or
   * more still fires at least 1 ms after it was set (it cannot fire before time moves at all). @default 0
   */
  skewMs?: number;
}

export interface ManualClock extends Clock {
  /** Moves time forward, firing every timer that falls due on the way (also ones set by those), each at its time. */
  advance(ms: number): void;
  /** Fires every timer pending now (not ones they set), earliest first, moving time to each one's firing time. */
  fire(): void;
  pending(): number;
}

/** One advance firing more timers than this is a timer that re-arms itself without time moving: a bug, not a wait. */
const MAX_FIRES_PER_ADVANCE = 10_000;

/**
 * Time moves only when the test says so; nothing here ever waits for real. With `skewMs` the timers and now()
 * disagree the way real ones do, so a unit test can show that code checks the clock rather than trusting a timer.
 */
export function manualClock(start = 0, options: ManualClockOptions = {}): ManualClock {
  const { skewMs = 0 } = options;
  let t = start;
  let next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const byTime = () => [...timers].sort((a, b) => a[1].at - b[1].at);
  const fireAt = (ms: number) => {
    const due = t + Math.max(0, ms);
    if (skewMs >= 0) return due + skewMs;
    return ms >= 1 ? Math.max(t + 1, due + skewMs) : t;
  };
  const run = (id: number, timer: { at: number; fn: () => void }) => {
    timers.delete(id);
    t = Math.max(t, timer.at);
    timer.fn();
  };
  return {
    now: () => t,
    setTimeout: (fn, ms) => {
      timers.set(next, { at: fireAt(ms), fn });
      return next++;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    advance(ms) {
      const target = t + ms;
      for (let fired = 0; ; fired++) {
        const [first] = byTime();
        if (!first || first[1].at > target) break;
        if (fired >= MAX_FIRES_PER_ADVANCE) throw new Error(`more than ${MAX_FIRES_PER_ADVANCE} timers fired in one advance`);
        run(...first);
      }
      t = Math.max(t, target);
    },
    fire() {
      for (const [id, timer] of byTime()) if (timers.has(id)) run(id, timer);
    },
    pending: () => timers.size,
  };
}
