import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { monotonicClock, type Clock } from './backoff.ts';
import { atDeadline, type DeadlineTimer } from './deadline-timer.ts';

export interface RateLimiterOptions {
  /** Requests per minute the bucket refills. */
  rpm: number;
  /** Bucket capacity: requests that may start at once after an idle period. */
  burst: number;
  /** Provider calls running at the same time, across all jobs. */
  maxInFlight: number;
  logger: Logger;
  /** Drives the refill and the pauses. @default monotonicClock */
  clock?: Clock;
}

export interface LimiterStats {
  /** Tasks waiting for a token or a slot (cancelled ones excluded). */
  queued: number;
  running: number;
  /** Tokens usable now: 0 while paused. */
  tokens: number;
  /** When the current provider-requested pause ends (epoch ms on `clock`), or null. */
  pausedUntil: number | null;
}

export interface RateLimiter {
  /** Runs fn when a token and an in-flight slot are free. A signal aborted before fn starts rejects at once. */
  schedule<T>(fn: () => Promise<T>, opts?: { signal?: AbortSignal }): Promise<T>;
  /** Hold every job's next start for ms (a provider's Retry-After); overlapping pauses end at the latest end. */
  pauseFor(ms: number, reason: string): void;
  stats(): Promise<LimiterStats>;
  /** Rejects waiting tasks with CANCELLED, refuses new ones, resolves when running tasks have finished. */
  stop(): Promise<void>;
}

/**
 * The longest pause a provider's hint may impose. A hint is the provider's word (`Retry-After`,
 * `x-ratelimit-reset-*`), and a broken or hostile server could say `9999h`: every job would then stall until its
 * chunk deadline. Past this the pause ends and the next request asks again (a still-exhausted limit answers 429
 * with a fresh hint).
 */
export const MAX_PAUSE_MS = 15 * 60 * 1000;

/** A provider's pause as the limiters honour it: at most MAX_PAUSE_MS; anything not a positive number is none. */
export function boundedPauseMs(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_PAUSE_MS) : 0;
}

/** A token counts as there once the refill is this close to it (float sums like 80 x (1/80) land just under 1). */
const EPSILON = 1e-9;

interface Waiter {
  run(): void;
  reject(err: unknown): void;
}

/**
 * One token bucket shared by every job: capacity `burst`, refilled at `rpm`, with `maxInFlight` concurrent calls;
 * tasks start in the order they came. Everything is measured on `clock`, a monotonic one by default. Not
 * bottleneck: its local store reads Date.now() for the refill and for each start, so a wall clock stepped back an
 * hour held every request an hour (the next start was "an hour away"), and it has had no release since 2019.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { rpm, burst, maxInFlight, logger, clock = monotonicClock } = options;
  if (!(rpm > 0) || !Number.isFinite(rpm)) throw new TypeError(`rpm must be a positive number, got ${rpm}`);
  if (!Number.isInteger(burst) || burst < 1) throw new TypeError(`burst must be an integer >= 1, got ${burst}`);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new TypeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  }
  const log = logger.child({ component: 'rate-limiter' });
  const msPerToken = 60_000 / rpm;

  let tokens = burst;
  let refilledAt = clock.now();
  const queue: Waiter[] = [];
  let running = 0;
  let pausedUntil = 0;
  let held = false;
  /** Owns the end of a pause: fires once the clock has reached pausedUntil, however early its timer fires. */
  let resumeTimer: DeadlineTimer | undefined;
  /** Owns the wait for the next token while a task waits only for one. */
  let tokenTimer: DeadlineTimer | undefined;
  let stopping: Promise<void> | undefined;
  let idle: (() => void) | undefined;

  const refill = () => {
    const now = clock.now();
    // Never negative: a clock that is not monotonic (an injected one) must not take tokens away.
    tokens = Math.min(burst, tokens + Math.max(0, now - refilledAt) / msPerToken);
    refilledAt = now;
  };

  /** Starts what may start now; otherwise leaves one owner for the next chance (a token, a slot, the pause's end). */
  function pump(): void {
    if (stopping || held) return;
    refill();
    while (queue.length > 0 && running < maxInFlight && tokens >= 1 - EPSILON) {
      tokens = Math.max(0, tokens - 1);
      queue.shift()?.run();
    }
    // A slot frees when a task ends (which pumps); a token only with time.
    if (queue.length > 0 && running < maxInFlight && tokenTimer === undefined) {
      tokenTimer = atDeadline(clock, refilledAt + (1 - tokens) * msPerToken, () => {
        tokenTimer = undefined;
        pump();
      });
    }
  }

  const resume = () => {
    resumeTimer = undefined;
    held = false;
    log.info({ pausedUntil: new Date(pausedUntil).toISOString() }, 'rate limiter resumed');
    pump();
  };

  const stoppedError = () =>
    new AppError('CANCELLED', 'The rate limiter stopped before the request could start.', {
      retryable: true,
      details: { reason: 'shutdown' },
    });

  return {
    schedule<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
      const { signal } = opts;
      if (stopping) return Promise.reject(stoppedError());
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<T>((resolve, reject) => {
        const leave = () => {
          const at = queue.indexOf(waiter);
          if (at >= 0) queue.splice(at, 1);
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          run: () => {
            leave();
            running += 1;
            // Not in this turn: the task's own code runs after schedule() returned, as it would after any wait.
            void Promise.resolve()
              .then(fn)
              .then(resolve, reject)
              .finally(() => {
                running -= 1;
                if (running === 0) idle?.();
                pump();
              });
          },
          // A task that leaves before it starts spends no token.
          reject: (err) => {
            leave();
            reject(err);
          },
        };
        const onAbort = () => waiter.reject(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(waiter);
        pump();
      });
    },

    pauseFor(asked, reason) {
      const ms = boundedPauseMs(asked);
      if (stopping || ms === 0) return;
      const until = clock.now() + ms;
      if (until <= pausedUntil && held) {
        log.debug({ ms, reason }, 'rate limiter already paused longer');
        return;
      }
      pausedUntil = until;
      held = true;
      resumeTimer?.cancel();
      resumeTimer = atDeadline(clock, until, resume);
      log.warn(
        { ms, askedMs: asked, reason, until: new Date(until).toISOString() },
        'rate limiter paused for every job',
      );
    },

    stats() {
      refill();
      return Promise.resolve({
        queued: queue.length,
        running,
        tokens: held ? 0 : Math.floor(tokens + EPSILON),
        pausedUntil: held ? pausedUntil : null,
      });
    },

    stop() {
      stopping ??= (async () => {
        resumeTimer?.cancel();
        resumeTimer = undefined;
        tokenTimer?.cancel();
        tokenTimer = undefined;
        const err = stoppedError();
        for (const waiter of [...queue]) waiter.reject(err);
        log.info({ running }, 'rate limiter stopping');
        if (running > 0) await new Promise<void>((resolve) => (idle = resolve));
      })();
      return stopping;
    },
  };
}
