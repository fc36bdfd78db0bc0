import type { Clock } from './backoff.ts';

/** setTimeout clamps longer delays to 1 ms (TimeoutOverflowWarning): a longer wait is re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DeadlineTimer {
  /** fn will not run; idempotent, and harmless after fn ran. */
  cancel(): void;
}

/**
 * Runs fn once, from a timer, the first time `clock.now() >= dueAt`. A timer is not a clock: Node's can fire while
 * Date.now() is still short of the time it was set for (the two are read from different clocks), or late. So the
 * check is made against the clock, and an early firing re-arms for the time still left instead of dropping the
 * wait: this timer is the one owner of the wait until fn runs or cancel is called. fn never runs synchronously.
 */
export function atDeadline(clock: Clock, dueAt: number, fn: () => void): DeadlineTimer {
  if (Number.isNaN(dueAt)) throw new TypeError('deadline must be a time, got NaN');
  let handle: unknown;
  let live = true;
  const arm = () => {
    handle = clock.setTimeout(check, Math.min(MAX_TIMER_MS, Math.max(0, dueAt - clock.now())));
  };
  function check(): void {
    handle = undefined;
    if (!live) return;
    if (clock.now() < dueAt) {
      arm();
      return;
    }
    live = false;
    fn();
  }
  arm();
  return {
    cancel() {
      live = false;
      if (handle !== undefined) clock.clearTimeout(handle);
      handle = undefined;
    },
  };
}
