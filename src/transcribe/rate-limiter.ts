import Bottleneck from 'bottleneck';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { monotonicClock, type Clock } from './backoff.ts';
import { atDeadline, type DeadlineTimer } from './deadline-timer.ts';
import { watchWallSteps } from './wall-step.ts';

export interface RateLimiterOptions {
  /** Requests per minute the bucket refills. */
  rpm: number;
  /** Bucket capacity: requests that may start at once after an idle period. */
  burst: number;
  /** Provider calls running at the same time, across all jobs. */
  maxInFlight: number;
  logger: Logger;
  /** Drives pauses only; bottleneck keeps its own refill timer. @default monotonicClock */
  clock?: Clock;
}

export interface LimiterStats {
  /** Tasks waiting for a token or a slot (cancelled ones excluded). */
  queued: number;
  running: number;
  /** Tokens usable now: 0 while paused. */
  tokens: number;
  /** When the current provider-requested pause ends (epoch ms on the limiter's clock, monotonic by default), or null. */
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
 * A wall clock stepped back by more than this rebuilds bottleneck (below it, a start waits at most this long), and
 * the limiter looks for a step this often besides on each schedule (a task queued before the step may be started
 * by a finishing one, with nothing scheduled).
 */
const STEP_BOUND_MS = 1000;
const STEP_CHECK_MS = 1000;

/** One bottleneck job for a task; a task has a new one each time bottleneck is rebuilt. */
interface Submission {
  readonly id: string;
  /** bottleneck ran the job (the task itself starts only if no other submission of it did first). */
  executed: boolean;
  /** It had its token when its bottleneck was retired: the token was not carried over, so a drop hands it back. */
  registered: boolean;
}

interface Entry {
  state: 'waiting' | 'abandoned' | 'started';
  /** The submission that speaks for the task; a retired bottleneck's drop of an older one is not its end. */
  sub: Submission | null;
  run(sub: Submission): Promise<void>;
  reject(err: unknown): void;
}

/**
 * One token bucket shared by every job: bottleneck's reservoir (capacity `burst`) refilled at `rpm`, with
 * `maxInFlight` concurrent calls. Never calls `updateSettings`: it silently stops the reservoir refill
 * (SGrondin/bottleneck#185), so pauses move the reservoir with `incrementReservoir` instead.
 *
 * bottleneck's local store reads Date.now() for its refill and for each start (lib/LocalDatastore.js): after the wall
 * clock steps back by S, it refills nothing and holds every start for S. So a step back retires the instance for a
 * new one that carries its reservoir (pause included) and gets the tasks still waiting; pauses run on `clock`.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { rpm, burst, maxInFlight, logger, clock = monotonicClock } = options;
  if (!(rpm > 0) || !Number.isFinite(rpm)) throw new TypeError(`rpm must be a positive number, got ${rpm}`);
  if (!Number.isInteger(burst) || burst < 1) throw new TypeError(`burst must be an integer >= 1, got ${burst}`);
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new TypeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  }
  const log = logger.child({ component: 'rate-limiter' });
  // A beat can add at most `burst` tokens (the cap), so a high rpm with a small burst needs faster beats.
  const beatMs = Math.max(MIN_BEAT_MS, Math.min(DEFAULT_BEAT_MS, Math.floor((60_000 * burst) / rpm)));
  const build = (reservoir: number): Bottleneck => {
    const settings: Bottleneck.ConstructorOptions & { heartbeatInterval: number } = {
      reservoir,
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
    const instance = new Bottleneck(settings);
    instance.on('error', (err: unknown) => log.error({ err }, 'bottleneck error'));
    return instance;
  };
  let bottleneck = build(burst);
  /** Instances retired after a step, until their running tasks have finished (stop waits for them). */
  const retiring = new Set<Promise<void>>();
  const steps = watchWallSteps(STEP_BOUND_MS);
  let submissions = 0;
  /** Submissions bottleneck has not settled yet, by job id. */
  const live = new Map<string, Submission>();

  const waiting = new Set<Entry>();
  let running = 0;
  /**
   * Jobs bottleneck ran while tasks of a retired instance still hold in-flight slots it cannot see: each waits
   * here for a slot (or for its task to have started or left), woken whenever either may have changed.
   */
  const slotWaiters = new Set<() => void>();
  const wake = () => {
    for (const w of slotWaiters) w();
    slotWaiters.clear();
  };
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
  /** A token taken for a task that did not start (abandoned, or started by another submission) goes back. */
  const handBack = () =>
    serially(async () => {
      const current = (await bottleneck.currentReservoir()) ?? 0;
      await bottleneck.incrementReservoir(Math.max(0, Math.min(1, burst - current)));
    });

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

  const submit = (entry: Entry) => {
    submissions += 1;
    const sub: Submission = { id: `task-${submissions}`, executed: false, registered: false };
    entry.sub = sub;
    live.set(sub.id, sub);
    bottleneck
      .schedule({ id: sub.id }, () => entry.run(sub))
      .catch((err: unknown) => {
        if (sub.registered && !sub.executed) handBack();
        if (entry.sub === sub) entry.reject(err);
      })
      .finally(() => live.delete(sub.id));
  };

  /**
   * Retires the instance after a step back: the new one starts from the old one's reservoir (a pause's hold
   * included), so the step grants no tokens, and every waiting task is submitted to it. The old one drops its queue;
   * a task it runs in the meantime starts there, and the other submission hands its token back.
   */
  const rebuild = async (stepMs: number) => {
    if (stopping) return;
    const old = bottleneck;
    const reservoir = (await old.currentReservoir()) ?? 0;
    if (stopping) return;
    // Synchronous from the read on: every job that took a token before it has been given its start timer by now
    // (RUNNING), and the stop below turns any later one into a drop, whose token the read still counted.
    // RUNNING: bottleneck's state between taking the token and starting the job (its typings' enum has no value).
    for (const id of old.jobs('RUNNING' as Bottleneck.Status)) {
      const sub = live.get(id);
      if (sub) sub.registered = true;
    }
    bottleneck = build(reservoir);
    const tasks = [...waiting];
    for (const entry of tasks) submit(entry);
    const retired = old
      .stop({ dropWaitingJobs: true })
      .catch((err: unknown) => log.error({ err }, 'retired bottleneck failed to stop'))
      .finally(() => old.disconnect());
    retiring.add(retired);
    void retired.finally(() => retiring.delete(retired));
    log.warn({ stepMs, resubmitted: tasks.length, running }, 'wall clock stepped back: rate limiter rebuilt');
  };

  const checkStep = () => {
    // Forward steps need nothing: bottleneck's next start is then in the past, and its refill adds one beat's share
    // per beat however long the beat seemed, so no burst of tokens comes from them either.
    const step = steps.check();
    if (step < 0) serially(() => rebuild(step));
  };
  const stepTimer = setInterval(checkStep, STEP_CHECK_MS);
  stepTimer.unref();

  return {
    schedule<T>(fn: () => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
      const { signal } = opts;
      if (stopping) return Promise.reject(stoppedError());
      if (signal?.aborted) return Promise.reject(signal.reason);
      checkStep();
      return new Promise<T>((resolve, reject) => {
        const entry: Entry = {
          state: 'waiting',
          sub: null,
          reject: (err: unknown) => {
            if (entry.state !== 'waiting') return;
            entry.state = 'abandoned';
            waiting.delete(entry);
            signal?.removeEventListener('abort', onAbort);
            wake();
            reject(err);
          },
          run: async (sub) => {
            sub.executed = true;
            while (entry.state === 'waiting' && running >= maxInFlight) {
              await new Promise<void>((r) => slotWaiters.add(r));
            }
            if (entry.state !== 'waiting') {
              // Bottleneck cannot remove a queued job, so one whose task left or already started hands its token back.
              handBack();
              return;
            }
            entry.state = 'started';
            waiting.delete(entry);
            signal?.removeEventListener('abort', onAbort);
            wake();
            running += 1;
            try {
              resolve(await fn());
            } catch (err) {
              reject(err);
            } finally {
              running -= 1;
              wake();
            }
          },
        };
        const onAbort = () => entry.reject(signal?.reason);
        waiting.add(entry);
        signal?.addEventListener('abort', onAbort, { once: true });
        submit(entry);
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
        clearInterval(stepTimer);
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
        await Promise.all(retiring);
      })();
      return stopping;
    },
  };
}
