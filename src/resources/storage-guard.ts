import type { Logger } from 'pino';
import { AppError, errorMessage } from '../errors.ts';
import { monotonicClock, wallClockOf, type Clock } from '../transcribe/backoff.ts';
import { isDiskFull } from './disk-full.ts';

/** Why a job's chunks are held, and until when (ISO-8601, null when unknown): a job resource's progress.waiting. */
export interface JobWaiting {
  reason: string;
  until: string | null;
}

/** progress.waiting.reason of a job held because the data volume is full. */
export const DISK_FULL_WAIT_REASON = 'disk_full';

export interface StorageGuardDeps {
  logger: Logger;
  /** Whether there is room to try the paused writes again (free disk under DATA_DIR at or above the critical reserve). */
  hasRoom(): Promise<boolean>;
  /** How often, while writes fail for lack of space, `hasRoom` is asked again. */
  retryMs: number;
  /** How long one write (or one chunk waiting to be sent) may wait for space before its job fails. */
  maxWaitMs: number;
  /** Told when writes start failing for lack of space (the pressure gauge then starts the emergency cleanup). */
  onFull?(): void;
  /** The waits and maxWaitMs: this process's own, which a wall clock step must not stretch or cut. @default monotonicClock */
  clock?: Clock;
  /** The next check's date as jobs show it. @default the `clock` option when one is given, else systemClock */
  wallClock?: Clock;
}

export interface StorageGuard {
  /**
   * Runs `write`; when it fails for lack of space, waits until there is room and runs it again (nothing is lost:
   * whatever the write stores stays in the caller's memory meanwhile). Other errors are thrown as they are; after
   * `maxWaitMs` without success it throws StorageWaitExceeded; an abort of `signal` ends the wait (not the first
   * try) with its reason.
   */
  run<T>(what: string, write: () => T | Promise<T>, signal: AbortSignal): Promise<T>;
  /** One try of a write that may be skipped (progress details): false when it failed for lack of space. */
  attempt(what: string, write: () => Promise<unknown>): Promise<boolean>;
  /** Something other than a guarded write (ffmpeg writing chunk files) ran out of space. */
  report(what: string, err: unknown): void;
  /** Resolves at once while writes work; while they fail for lack of space, once there is room again. */
  writable(signal: AbortSignal): Promise<void>;
  isFull(): boolean;
  /** What a running job's progress.waiting shows while writes fail for lack of space, else null. */
  waiting(): JobWaiting | null;
  /** Stops the timer; waits in progress end by their own signals. */
  stop(): void;
}

/** A job's write waited longer than DISK_FULL_MAX_WAIT_S for space: the job fails with INSUFFICIENT_STORAGE. */
export class StorageWaitExceeded extends AppError {
  constructor(what: string, waitedMs: number) {
    super(
      'INSUFFICIENT_STORAGE',
      `The data volume stayed full for ${Math.round(waitedMs / 1000)} s (${what}); free space and submit the job again.`,
      {
        details: { resource: 'disk' },
      },
    );
    this.name = 'StorageWaitExceeded';
  }
}

/**
 * The service's one view of "the data volume is full": every job write that fails for lack of space parks here
 * instead of failing its job, and one timer (this module's, re-armed by itself only) decides when they try again.
 * A timer that fires early or late only moves a check; what resumes the jobs is a write that succeeds.
 */
export function createStorageGuard(deps: StorageGuardDeps): StorageGuard {
  const { logger, retryMs, maxWaitMs, clock = monotonicClock } = deps;
  const wall = wallClockOf(deps);
  let full: { since: number; what: string } | null = null;
  let nextCheckAt: number | null = null;
  let timer: unknown = null;
  let stopped = false;
  // Settled at every check: true when the waiters should try again. Replaced each time, so a waiter sees one check.
  let check = nextSettlement();

  function settle(tryAgain: boolean): void {
    const current = check;
    check = nextSettlement();
    current.resolve(tryAgain);
  }

  function arm(): void {
    if (timer !== null || stopped || !full) return;
    nextCheckAt = clock.now() + retryMs;
    timer = clock.setTimeout(() => void onTimer(), retryMs);
  }

  async function onTimer(): Promise<void> {
    timer = null;
    let room = false;
    try {
      room = await deps.hasRoom();
    } catch (err) {
      logger.warn({ err: errorMessage(err) }, 'could not read the free space of the data volume');
    }
    if (!full) return;
    if (room) {
      clear('free space is back');
    } else {
      settle(false);
      arm();
    }
  }

  function markFull(what: string, err: unknown): void {
    if (!full) {
      full = { since: clock.now(), what };
      logger.warn({ what, err: errorMessage(err) }, 'data volume full: jobs paused until space is freed');
      try {
        deps.onFull?.();
      } catch (listenerErr) {
        logger.error({ err: errorMessage(listenerErr) }, 'a listener of the full volume failed');
      }
    }
    arm();
  }

  function clear(why: string): void {
    if (!full) return;
    logger.info({ why, pausedMs: clock.now() - full.since }, 'data volume writable again: paused jobs resume');
    full = null;
    nextCheckAt = null;
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    settle(true);
  }

  function nextCheck(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void check.promise.then((tryAgain: boolean) => {
        signal.removeEventListener('abort', onAbort);
        resolve(tryAgain);
      });
    });
  }

  async function waitForRoom(what: string, startedAt: number, signal: AbortSignal): Promise<void> {
    while (full) {
      const waited = clock.now() - startedAt;
      if (waited >= maxWaitMs) throw new StorageWaitExceeded(what, waited);
      await nextCheck(signal);
    }
  }

  return {
    async run(what, write, signal) {
      const startedAt = clock.now();
      for (;;) {
        // The first try runs even when `signal` is already aborted: it only ends waiting.
        try {
          const value = await write();
          clear('a write succeeded');
          return value;
        } catch (err) {
          if (!isDiskFull(err)) throw err;
          markFull(what, err);
        }
        await waitForRoom(what, startedAt, signal);
      }
    },
    async attempt(what, write) {
      try {
        await write();
        clear('a write succeeded');
        return true;
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        markFull(what, err);
        return false;
      }
    },
    report: markFull,
    writable: (signal) => waitForRoom('waiting to send a chunk', clock.now(), signal),
    isFull: () => full !== null,
    waiting: () =>
      full
        ? {
            reason: DISK_FULL_WAIT_REASON,
            until: nextCheckAt === null ? null : new Date(wall.now() + nextCheckAt - clock.now()).toISOString(),
          }
        : null,
    stop() {
      stopped = true;
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
    },
  };
}

function nextSettlement(): { promise: Promise<boolean>; resolve(tryAgain: boolean): void } {
  let resolve!: (tryAgain: boolean) => void;
  const promise = new Promise<boolean>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
