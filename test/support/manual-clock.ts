import type { Clock } from '../../src/transcribe/backoff.ts';

export interface ManualClock extends Clock {
  /** Moves time forward and fires every timer that is due, earliest first. */
  advance(ms: number): void;
  /** Fires every pending timer, moving time to the latest of them. */
  fire(): void;
  pending(): number;
}

/** Time moves only when the test says so; nothing here ever waits for real. */
export function manualClock(start = 0): ManualClock {
  let t = start;
  let next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const due = () => [...timers].sort((a, b) => a[1].at - b[1].at);
  return {
    now: () => t,
    setTimeout: (fn, ms) => {
      timers.set(next, { at: t + ms, fn });
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
