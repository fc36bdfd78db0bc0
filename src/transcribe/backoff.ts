import { atDeadline } from './deadline-timer.ts';

/** Time source and timers, injected so retry, pause and cool-down logic is tested without real waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const unrefTimer = (fn: () => void, ms: number): unknown => {
  const timer = setTimeout(fn, ms);
  // A pending pause or cool-down must never keep the process alive on its own.
  timer.unref();
  return timer;
};
const clearTimer = (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>);

/** The wall clock: for times other processes and hosts compare (shared leases, a circuit's retryAt in Redis). */
export const systemClock: Clock = { now: () => Date.now(), setTimeout: unrefTimer, clearTimeout: clearTimer };

/**
 * Milliseconds on the epoch's scale that never step: the wall clock at the process's start plus the monotonic time
 * since. For this process's own waits (a chunk's deadline, a retry's backoff): measured on Date.now(), a wall clock
 * stepped back by NTP or an operator stretched every wait armed before the step by the step (an hour back left a
 * hung chunk an hour past its deadline, and held a retry an hour).
 */
export const monotonicClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: unrefTimer,
  clearTimeout: clearTimer,
};

/**
 * The wall clock of a part that measures its own waits on `clock` (monotonic by default) and also shows or shares
 * dates: `wallClock` when given, else the `clock` option when given (a test's single clock drives both), else
 * systemClock.
 */
export function wallClockOf(options: { clock?: Clock; wallClock?: Clock }): Clock {
  return options.wallClock ?? options.clock ?? systemClock;
}

export interface BackoffOptions {
  /** 1-based number of the attempt that just failed. */
  attempt: number;
  /** Delay scale of the first retry, in ms. */
  baseMs: number;
  /** Upper bound of the jittered part, in ms. */
  capMs: number;
  /** A wait the server asked for (Retry-After); the result is never below it, even above capMs. */
  floorMs?: number;
  /** Uniform in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: `random() * min(cap, base * 2^(attempt-1))`, raised to the server's hint.
 * Full jitter spreads the retries of many chunks that failed together, so they do not hit the provider in step.
 */
export function computeBackoffMs(options: BackoffOptions): number {
  const { attempt, baseMs, capMs, floorMs = 0, random = Math.random } = options;
  if (!Number.isInteger(attempt) || attempt < 1) throw new TypeError(`attempt must be an integer >= 1, got ${attempt}`);
  if (!(baseMs >= 0) || !(capMs >= 0)) throw new TypeError(`baseMs and capMs must be >= 0, got ${baseMs} and ${capMs}`);
  // 2^attempt overflows to Infinity for huge attempts; min() keeps that harmless.
  const ceiling = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(Math.ceil(floorMs), jittered);
}

/**
 * Resolves once `clock` says ms have passed (a timer firing early does not cut the wait short: a retry sent before
 * the provider's Retry-After is spent on another 429); rejects with the signal's reason the moment it aborts (also
 * when already aborted).
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = monotonicClock): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(signal?.reason);
    };
    const timer = atDeadline(clock, clock.now() + Math.max(0, ms), () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `work`, or the signal's reason the moment it aborts, even if the work ignores the signal (the work is then left to
 * settle unobserved).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
