import Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { systemClock, type Clock } from './backoff.ts';
import { atDeadline, type DeadlineTimer } from './deadline-timer.ts';

export interface RateLimiterOptions {
  /** Requests per minute the bucket refills. */
  rpm: number;
  /** Bucket capacity: requests that may start at once after an idle period. */
  burst: number;
  /** Provider calls running at the same time, across all jobs. */
  maxInFlight: number;
  logger: Logger;
  /** Drives pauses only; bottleneck keeps its own refill timer. @default systemClock */
  clock?: Clock;
}

export interface LimiterStats {
  /** Tasks waiting for a token or a slot (cancelled ones excluded). */
  queued: number;
  running: number;
  /** Tokens usable now: 0 while paused. */
  tokens: number;
  /** Epoch ms the current provider-requested pause ends, or null. */
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

/** Subtracted from the reservoir while paused, so bottleneck's own refill cannot bring it back above zero. */
const HOLD = 1e9;

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
/** Bottleneck's default heartbeat: the reservoir only grows on a beat. */
const DEFAULT_BEAT_MS = 250;
const MIN_BEAT_MS = 10;

/**
 * One token bucket shared by every job: bottleneck's reservoir (capacity `burst`) refilled at `rpm`, with
 * `maxInFlight` concurrent calls. Never calls `updateSettings`: it silently stops the reservoir refill
 * (SGrondin/bottleneck#185), so pauses move the reservoir with `incrementReservoir` instead.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { rpm, burst, maxInFlight, logger, clock = systemClock } = options;
  if (!(rpm > 0) || !Number.isFinite(rpm)) throw new TypeError(`rpm must be a positive number, got ${rpm}`);
  if (!Number.isInteger(burst) || burst < 1) throw new TypeError(`burst must be an integer >= 1, got ${burst}`);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new TypeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  }
  const log = logger.child({ component: 'rate-limiter' });
  // A beat can add at most `burst` tokens (the cap), so a high rpm with a small burst needs faster beats.
  const beatMs = Math.max(MIN_BEAT_MS, Math.min(DEFAULT_BEAT_MS, Math.floor((60_000 * burst) / rpm)));
  const settings: Bottleneck.ConstructorOptions & { heartbeatInterval: number } = {
    reservoir: burst,
    // One refill step per heartbeat: the interval sits just under the beat so no beat is skipped, and each
    // step adds the beat's share of rpm (a fraction is fine: a job runs once the reservoir reaches 1). The
    // epsilon stops float sums like 80 x (1/80) landing just under 1 and costing a whole extra beat.
    reservoirIncreaseInterval: beatMs * 0.9,
    reservoirIncreaseAmount: (rpm * beatMs) / 60_000 + 1e-9,
    reservoirIncreaseMaximum: burst,
    maxConcurrent: maxInFlight,
    // Local-datastore option that bottleneck's typings omit (lib/Bottleneck.js localStoreDefaults).
    heartbeatInterval: beatMs,
  };
  const bottleneck = new Bottleneck(settings);
  bottleneck.on('error', (err: unknown) => log.error({ err }, 'bottleneck error'));

  const waiting = new Set<{ reject(err: unknown): void }>();
  let running = 0;
  let held = false;
  let pausedUntil = 0;
  /** Owns the end of a pause: fires once the clock has reached pausedUntil, however early its timer fires. */
  let resumeTimer: DeadlineTimer | undefined;
  let stopping: Promise<void> | undefined;
  // Reservoir moves are read-modify-write on an async store: run them one after another.
  let ops: Promise<unknown> = Promise.resolve();
  const serially = (op: () => Promise<unknown>) => {
    ops = ops.then(op).catch((err: unknown) => log.error({ err }, 'reservoir update failed'));
  };

  const stoppedError = () =>
    new AppError('CANCELLED', 'The rate limiter stopped before the request could start.', {
      retryable: true,
      details: { reason: 'shutdown' },
    });

  const resume = () => {
    resumeTimer = undefined;
    held = false;
    log.info({ pausedUntil: new Date(pausedUntil).toISOString() }, 'rate limiter resumed');
    serially(async () => {
      const current = (await bottleneck.currentReservoir()) ?? 0;
      // Tokens refilled during the pause stay earned, but never beyond the bucket's capacity.
      await bottleneck.incrementReservoir(Math.min(burst, current + HOLD) - current);
    });
  };

  return {
    schedule<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
      const { signal } = opts;
      if (stopping) return Promise.reject(stoppedError());
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<T>((resolve, reject) => {
        let state: 'waiting' | 'abandoned' | 'started' = 'waiting';
        const entry = {
          reject: (err: unknown) => {
            if (state !== 'waiting') return;
            state = 'abandoned';
            waiting.delete(entry);
            signal?.removeEventListener('abort', onAbort);
            reject(err);
          },
        };
        const onAbort = () => entry.reject(signal?.reason);
        waiting.add(entry);
        signal?.addEventListener('abort', onAbort, { once: true });
        bottleneck
          .schedule(async () => {
            if (state === 'abandoned') {
              // Bottleneck cannot remove a queued job, so the abandoned one gets its token and hands it back.
              serially(async () => {
                const current = (await bottleneck.currentReservoir()) ?? 0;
                await bottleneck.incrementReservoir(Math.min(1, burst - current));
              });
              return;
            }
            state = 'started';
            waiting.delete(entry);
            signal?.removeEventListener('abort', onAbort);
            running += 1;
            try {
              resolve(await fn());
            } catch (err) {
              reject(err);
            } finally {
              running -= 1;
            }
          })
          .catch((err: unknown) => entry.reject(err));
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
      resumeTimer?.cancel();
      resumeTimer = atDeadline(clock, until, resume);
      log.warn(
        { ms, askedMs: asked, reason, until: new Date(until).toISOString() },
        'rate limiter paused for every job',
      );
      if (!held) {
        held = true;
        serially(() => bottleneck.incrementReservoir(-HOLD));
      }
    },

    async stats() {
      const reservoir = (await bottleneck.currentReservoir()) ?? 0;
      return {
        queued: waiting.size,
        running,
        tokens: held ? 0 : Math.max(0, Math.floor(Math.min(burst, reservoir))),
        pausedUntil: held ? pausedUntil : null,
      };
    },

    stop() {
      stopping ??= (async () => {
        resumeTimer?.cancel();
        resumeTimer = undefined;
        const err = stoppedError();
        for (const entry of [...waiting]) entry.reject(err);
        log.info({ running }, 'rate limiter stopping');
        try {
          await bottleneck.stop({ dropWaitingJobs: true });
        } finally {
          await bottleneck.disconnect();
        }
      })();
      return stopping;
    },
  };
}
