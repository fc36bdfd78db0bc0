import type { Logger } from 'pino';
import { errorMessage, isAppError, type ErrorCode } from '../errors.ts';
import { computeBackoffMs, monotonicClock, sleep as defaultSleep, untilAborted, type Clock } from './backoff.ts';
import {
  fail,
  settle,
  verdictOn,
  type Actionable,
  type ChunkRun,
  type ChunkTranscriptionError,
  type TranscribeHooks,
} from './chunk-outcome.ts';
import { CircuitOpenError, type CircuitBreaker, type CircuitPermit } from './circuit-breaker.ts';
import { atDeadline } from './deadline-timer.ts';
import { boundedPauseMs, type RateLimiter } from './rate-limiter.ts';
import type { RateLimitHint } from './provider-error.ts';
import { classifyError, errorIdentifier } from './retry-policy.ts';
import type { ChunkResult, TranscribeInput, TranscriptionProvider } from './types.ts';

export interface ChunkTranscriberOptions {
  provider: TranscriptionProvider;
  limiter: Pick<RateLimiter, 'schedule' | 'pauseFor'>;
  breaker: Pick<CircuitBreaker, 'admit' | 'snapshot'>;
  logger: Logger;
  /** Provider calls per chunk, first one included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Total time one chunk may take, waits and retries included. */
  chunkDeadlineMs: number;
  /** @default abortable timer on `clock` */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** @default Math.random */
  random?: () => number;
  /** Drives the deadline and the waits. @default monotonicClock */
  clock?: Clock;
}

export interface ChunkTranscriber {
  transcribe(input: TranscribeInput, hooks?: TranscribeHooks): Promise<ChunkResult>;
}

class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`chunk deadline of ${ms}ms exceeded`);
    this.name = 'DeadlineExceeded';
  }
}

/** What every chunk's run works with, fixed when the transcriber is made. */
interface Deps {
  provider: TranscriptionProvider;
  limiter: ChunkTranscriberOptions['limiter'];
  breaker: ChunkTranscriberOptions['breaker'];
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  chunkDeadlineMs: number;
  random: () => number;
  clock: Clock;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Our own abort (cancel or deadline) ends the chunk whatever was in flight. */
function stopped(t: Deps, run: ChunkRun, waitingForCircuit: boolean): ChunkTranscriptionError {
  if (run.input.signal.aborted) {
    return fail(run, 'CANCELLED', 'Chunk transcription was cancelled.', {
      cause: run.input.signal.reason,
      errorClass: 'cancelled',
    });
  }
  const code: ErrorCode = waitingForCircuit ? 'PROVIDER_UNAVAILABLE' : 'CHUNK_FAILED';
  return fail(
    run,
    code,
    `Chunk ${run.input.index} did not finish within ${t.chunkDeadlineMs}ms (${run.attempt} attempts).`,
  );
}

/** Waits at the circuit breaker until the provider may be called; an open circuit for auth or quota ends the job. */
async function admit(t: Deps, run: ChunkRun): Promise<CircuitPermit> {
  const circuit = t.breaker.snapshot();
  // The admit below will hold this chunk: say so, so the job resource can tell why nothing moves.
  if (circuit.state !== 'closed' && circuit.code === 'PROVIDER_UNAVAILABLE') {
    run.hooks.onWaiting?.({ reason: 'provider_circuit_open', until: circuit.retryAt });
  }
  try {
    return await t.breaker.admit(run.signal);
  } catch (err) {
    if (err instanceof CircuitOpenError) {
      throw fail(run, err.code, err.message, { fatalForJob: true, cause: err, errorClass: 'circuit-open' });
    }
    if (run.signal.aborted) throw stopped(t, run, true);
    throw err;
  }
}

/** One provider call in a limiter slot: the result, or the policy's decision on its failure (the breaker told). */
async function attemptOnce(
  t: Deps,
  run: ChunkRun,
  permit: CircuitPermit,
): Promise<{ result: ChunkResult } | { decision: Actionable; err: unknown }> {
  const { input, signal, log } = run;
  // An answer saying the account's limit is used up holds every job until it resets, not just this one.
  const onRateLimit = (hint: RateLimitHint) => t.limiter.pauseFor(hint.exhaustedForMs, hint.reason);
  try {
    log.debug({ attempt: run.attempt, probe: permit.probe }, 'sending chunk');
    const result = await t.limiter.schedule(
      async () => {
        // The limiter's wait may have been long (or the process frozen in it): the job may have ended meanwhile.
        input.beforeRequest?.();
        signal.throwIfAborted();
        return untilAborted(t.provider.transcribe({ ...input, signal, onRateLimit }), signal);
      },
      { signal },
    );
    permit.succeed();
    log.debug({ attempt: run.attempt, segments: result.segments.length }, 'chunk transcribed');
    return { result };
  } catch (err) {
    if (signal.aborted) {
      permit.release();
      throw stopped(t, run, false);
    }
    const decision = classifyError(err);
    if (decision.action !== 'cancelled') {
      settle(permit, decision);
      return { decision, err };
    }
    permit.release();
    // Our own machinery said stop (the limiter shutting down): end now, the chunk is not at fault.
    if (isAppError(err)) throw fail(run, 'CANCELLED', err.message, { cause: err, errorClass: 'cancelled' });
    // An abort we did not ask for is not a cancellation; retry it like anything else we do not know.
    return { decision: { action: 'retry', class: 'unknown', providerFault: false, maxAttempts: 3 }, err };
  }
}

/** Throws what ends the chunk; otherwise waits out the backoff (at least the provider's hint) before the next attempt. */
async function waitToRetry(t: Deps, run: ChunkRun, decision: Actionable, err: unknown): Promise<void> {
  const id = errorIdentifier(err);
  const log = { attempt: run.attempt, errorClass: decision.class, code: id, err: errorMessage(err) };
  const verdict = verdictOn(run, decision, err, t.maxAttempts, log);
  if ('error' in verdict) throw verdict.error;
  // Capped as the limiters cap a pause: a server's `Retry-After: 9999h` must not fail the chunk outright either.
  const asked = verdict.decision.retryAfterMs;
  const hint = asked === undefined ? undefined : boundedPauseMs(asked);
  const delayMs = computeBackoffMs({
    attempt: run.attempt,
    baseMs: t.baseDelayMs,
    capMs: t.maxDelayMs,
    floorMs: hint,
    random: t.random,
  });
  if (t.clock.now() + delayMs >= run.deadlineAt) {
    run.log.warn({ ...log, delayMs }, 'chunk failed; the next attempt would pass its deadline');
    throw fail(
      run,
      'CHUNK_FAILED',
      `Chunk ${run.input.index} failed (${decision.class}); retrying would pass its ${t.chunkDeadlineMs}ms deadline.`,
    );
  }
  // The provider's wait applies to the whole account, so every job holds, not just this chunk.
  if (hint !== undefined && hint > 0) t.limiter.pauseFor(hint, `${decision.class} (${id ?? 'no code'})`);
  run.log.warn({ ...log, delayMs, retryAfterMs: hint }, 'chunk attempt failed; retrying');
  run.hooks.onRetry?.({
    attempt: run.attempt,
    delayMs,
    errorClass: decision.class,
    ...(id !== undefined && { code: id }),
  });
  try {
    await t.sleep(delayMs, run.signal);
  } catch {
    throw stopped(t, run, false);
  }
  if (run.signal.aborted) throw stopped(t, run, false);
}

export function createChunkTranscriber(options: ChunkTranscriberOptions): ChunkTranscriber {
  const { logger, maxAttempts, chunkDeadlineMs } = options;
  const { random = Math.random, clock = monotonicClock } = options;
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => defaultSleep(ms, signal, clock));
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new TypeError(`maxAttempts must be an integer >= 1, got ${maxAttempts}`);
  if (!(chunkDeadlineMs > 0)) throw new TypeError(`chunkDeadlineMs must be > 0, got ${chunkDeadlineMs}`);
  const t: Deps = { ...options, random, clock, sleep };

  async function transcribe(input: TranscribeInput, hooks: TranscribeHooks = {}): Promise<ChunkResult> {
    const deadlineAt = clock.now() + chunkDeadlineMs;
    const deadline = new AbortController();
    const timer = atDeadline(clock, deadlineAt, () => deadline.abort(new DeadlineExceeded(chunkDeadlineMs)));
    const run: ChunkRun = {
      input,
      hooks,
      log: logger.child({ jobId: input.jobId, chunk: input.index }),
      signal: AbortSignal.any([input.signal, deadline.signal]),
      deadlineAt,
      attempt: 0,
      last: undefined,
    };
    try {
      for (;;) {
        run.attempt += 1;
        const permit = await admit(t, run);
        hooks.onAttempt?.(run.attempt);
        const outcome = await attemptOnce(t, run, permit);
        if ('result' in outcome) return outcome.result;
        run.last = outcome;
        await waitToRetry(t, run, outcome.decision, outcome.err);
      }
    } finally {
      timer.cancel();
    }
  }

  return { transcribe };
}
