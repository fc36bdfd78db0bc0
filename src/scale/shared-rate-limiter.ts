import { randomUUID } from 'node:crypto';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { monotonicClock, type Clock } from '../transcribe/backoff.ts';
import { closeWithin } from './bounded-close.ts';
import { boundedPauseMs, type LimiterStats, type RateLimiter } from '../transcribe/rate-limiter.ts';

export interface SharedRateLimiterOptions {
  connection: ConnectionOptions;
  /** BullMQ key prefix; every process sharing the limit uses the same one. */
  prefix: string;
  /** The backend whose limit this is: its permits queue is its own. @default one queue (a single backend) */
  backend?: string;
  rpm: number;
  burst: number;
  /** Provider calls running at the same time in THIS process (a local resource cap, not part of the shared limit). */
  maxInFlight: number;
  logger: Logger;
  /**
   * This process's own view of a pause (pausedUntil, which decides whether a new pause is longer) and its waits; the
   * shared pause itself is a TTL in Redis, on Redis's clock. @default monotonicClock
   */
  clock?: Clock;
  /** How often a process with waiting requests asks again when no permit was free. @default 50 */
  pollMs?: number;
}

const QUEUE = 'provider-permits';
const STATS_TIMEOUT_MS = 500;

/**
 * BullMQ's limiter is a fixed window: the first fetch of a window starts it, at most `max` fetches fall in it, and
 * the next window starts at the first fetch after it ended. Any interval T then holds at most max x (T/D + 2)
 * fetches, so max = burst/2 and D = max / rpm keep every interval under rpm x T + burst, the token bucket's bound.
 */
export function windowFor(rpm: number, burst: number): { max: number; durationMs: number } {
  const max = Math.max(1, Math.floor(burst / 2));
  return { max, durationMs: Math.max(1, Math.round((max * 60_000) / rpm)) };
}

interface Waiter {
  start(): void;
  reject(err: unknown): void;
  permit: Promise<Job | null>;
}

/**
 * The provider rate limit shared by every process on one Redis, on BullMQ's global queue limiter: each request
 * waiting here adds one permit job to a shared queue and a request starts only when this process has fetched a
 * permit, and BullMQ counts fetches across all processes. Permits are interchangeable (any fetched permit starts
 * this process's oldest waiter), so a process only fetches while it has waiters; a permit left by a cancelled or
 * dead waiter is surplus that a later waiter uses, never a second start. A Retry-After pause sets BullMQ's
 * limiter key for its duration (`queue.rateLimit`), which holds every process's fetches.
 */
export function createSharedRateLimiter(options: SharedRateLimiterOptions): RateLimiter {
  const { connection, prefix, rpm, burst, maxInFlight, logger, clock = monotonicClock, pollMs = 50 } = options;
  const queueName = options.backend === undefined ? QUEUE : `${QUEUE}-${options.backend}`;
  const log = logger.child({ component: 'shared-rate-limiter' });
  const window = windowFor(rpm, burst);
  const queue = new Queue(queueName, { connection, prefix });
  const fetcher = new Worker(queueName, null, {
    connection,
    prefix,
    autorun: false,
    limiter: { max: window.max, duration: window.durationMs },
  });
  queue.on('error', (err) => log.error({ err }, 'permit queue error'));
  fetcher.on('error', (err) => log.error({ err }, 'permit fetcher error'));
  const token = randomUUID();

  const waiters: Waiter[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let running = 0;
  let pausedUntil = 0;
  let stopping: Promise<void> | undefined;
  let wake: (() => void) | null = null;
  const nudge = () => {
    wake?.();
    wake = null;
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = clock.setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clock.clearTimeout(timer);
        resolve();
      };
    });

  const stoppedError = () =>
    new AppError('CANCELLED', 'The rate limiter stopped before the request could start.', {
      retryable: true,
      details: { reason: 'shutdown' },
    });

  /**
   * Permit adds of this process not yet answered, and how many were answered so far: an empty queue says a permit
   * is lost only when no add was on its way at any moment since the fetch that found it empty was sent.
   */
  let adding = 0;
  let added = 0;
  const addPermit = () => {
    adding += 1;
    return queue.add('permit', {}, { removeOnComplete: true, removeOnFail: true }).finally(() => {
      adding -= 1;
      added += 1;
    });
  };

  /**
   * Whether Redis holds no permit although every waiter here has added its own: it lost them (a restart that lost
   * the end of its append-only file, a FLUSHALL), and the waiters would wait until their chunks' deadlines. Asked
   * only when a fetch found nothing outside a closed window; `addsBefore` is `added` when that fetch was sent with no
   * add on its way (else -1). One permit is then added again for the oldest waiter; at worst (another process took
   * the last one while its own add was on its way) that is one surplus permit, which never starts a request beyond
   * the window's count.
   */
  const permitsLost = async (addsBefore: number): Promise<boolean> =>
    addsBefore === added && (await queue.getWaitingCount()) === 0 && adding === 0 && added === addsBefore;

  const loop = (async () => {
    while (!stopping) {
      if (waiters.length === 0 || running >= maxInFlight) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      try {
        const addsBefore = adding === 0 ? added : -1;
        const job = await fetcher.getNextJob(token, { block: false });
        if (!job) {
          const ttl = await queue.getRateLimitTtl(window.max);
          if (ttl <= 0 && (await permitsLost(addsBefore))) {
            log.warn({ waiting: waiters.length }, 'no permit in Redis for the requests waiting here; adding one');
            await addPermit();
            continue;
          }
          await sleep(ttl > 0 ? Math.min(ttl, 1_000) : pollMs);
          continue;
        }
        await job.moveToCompleted(null, token, false);
        // A waiter that gave up between the fetch and here leaves this permit unused: a lost slot, never an extra one.
        waiters.shift()?.start();
      } catch (err) {
        if (stopping) break;
        log.error({ err }, 'could not fetch a permit; trying again');
        await sleep(1_000);
      }
    }
  })();

  return {
    schedule<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
      const { signal } = opts;
      if (stopping) return Promise.reject(stoppedError());
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<T>((resolve, reject) => {
        const leave = () => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          permit: addPermit().catch((err: unknown) => {
            waiter.reject(err);
            return null;
          }),
          start: () => {
            leave();
            running += 1;
            const call = fn()
              .then(resolve, reject)
              .finally(() => {
                running -= 1;
                inFlight.delete(call);
                nudge();
              });
            inFlight.add(call);
          },
          reject: (err) => {
            leave();
            // Best effort: a permit still waiting is removed so it is not left as surplus.
            void waiter.permit.then((job) => job?.remove()).catch(() => undefined);
            reject(err);
          },
        };
        const onAbort = () => waiter.reject(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
        nudge();
      });
    },

    pauseFor(asked, reason) {
      const ms = boundedPauseMs(asked);
      if (stopping || ms === 0) return;
      const until = clock.now() + ms;
      if (until <= pausedUntil) return;
      pausedUntil = until;
      log.warn(
        { ms, askedMs: asked, reason, until: new Date(until).toISOString() },
        'rate limiter paused for every process',
      );
      // A shorter pause set by another process must not cut a longer one short: the limiter key keeps the longer TTL.
      void (async () => {
        const ttl = await queue.getRateLimitTtl(Number.MAX_SAFE_INTEGER);
        if (ttl < ms) await queue.rateLimit(ms);
      })().catch((err: unknown) => log.error({ err }, 'could not set the shared pause'));
    },

    async stats(): Promise<LimiterStats> {
      // Health checks and metrics read this: a Redis that does not answer must not hold them (commands wait for a
      // reconnect), so after a short wait the window counts as closed.
      let timer: unknown;
      const ttl = await Promise.race([
        queue.getRateLimitTtl(window.max),
        new Promise<number>((resolve) => {
          timer = clock.setTimeout(() => resolve(Number.POSITIVE_INFINITY), STATS_TIMEOUT_MS);
        }),
      ]).finally(() => clock.clearTimeout(timer));
      const now = clock.now();
      return {
        queued: waiters.length,
        running,
        // The shared window's exact count is BullMQ's; what matters to a reader is whether a request could start now.
        tokens: ttl > 0 || pausedUntil > now ? 0 : window.max,
        pausedUntil: pausedUntil > now ? pausedUntil : null,
      };
    },

    stop() {
      stopping ??= (async () => {
        const err = stoppedError();
        for (const w of [...waiters]) w.reject(err);
        nudge();
        await loop;
        log.info({ running }, 'rate limiter stopping');
        await Promise.allSettled([...inFlight]);
        await closeWithin('rate-limit permit worker', fetcher, log);
        await closeWithin('rate-limit queue', queue, log);
      })();
      return stopping;
    },
  };
}
