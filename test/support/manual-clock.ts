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
  /**
   * Moves time forward by ms, then fires every timer due by then, earliest first, each seeing the new time (as on
   * an event loop that was busy); timers they set wait for the next advance.
   */
  advance(ms: number): void;
  /** Fires every pending timer (not ones they set), earliest first, moving time to each one's firing time. */
  fire(): void;
  pending(): number;
}

/**
 * Time moves only when the test says so; nothing here ever waits for real. With `skewMs` the timers and now()
 * disagree the way real ones do, so a unit test can show that code checks the clock rather than trusting a timer.
 */
export function manualClock(start = 0, options: ManualClockOptions = {}): ManualClock {
  const { skewMs = 0 } = options;
  let t = start;
  let next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const due = () => [...timers].sort((a, b) => a[1].at - b[1].at);
  const fireAt = (ms: number) => {
    const setFor = t + Math.max(0, ms);
    if (skewMs >= 0) return setFor + skewMs;
    return ms >= 1 ? Math.max(t + 1, setFor + skewMs) : t;
  };
  return {
    now: () => t,
    setTimeout: (fn, ms) => {
      timers.set(next, { at: fireAt(ms), fn });
      return next++;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    advance(ms) {
      t += ms;
      for (const [id, timer] of due()) {
        if (timer.at > t || !timers.has(id)) continue;
        timers.delete(id);
        timer.fn();
      }
    },
    fire() {
      for (const [id, timer] of due()) {
        if (!timers.has(id)) continue;
        timers.delete(id);
        t = Math.max(t, timer.at);
        timer.fn();
      }
    },
    pending: () => timers.size,
  };
}
