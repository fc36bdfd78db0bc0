import type { Logger } from 'pino';
import { AppError, errorMessage, isAppError, type ErrorCode } from '../errors.ts';
import { computeBackoffMs, sleep as defaultSleep, systemClock, type Clock } from './backoff.ts';
import { CircuitOpenError, type CircuitBreaker, type CircuitPermit } from './circuit-breaker.ts';
import { atDeadline } from './deadline-timer.ts';
import type { RateLimiter } from './rate-limiter.ts';
import type { RateLimitHint } from './provider-error.ts';
import { classifyError, errorIdentifier, type Decision, type Remedy } from './retry-policy.ts';
import type { ChunkResult, TranscribeInput, TranscriptionProvider } from './types.ts';

/** Why one chunk could not be transcribed; `fatalForJob` tells the runner to stop the whole job. */
export class ChunkTranscriptionError extends AppError {
  readonly fatalForJob: boolean;
  readonly errorClass: string;
  readonly attempts: number;
  /** The provider refused these bytes (too large, undecodable, too short): what may get the audio through. */
  readonly remedy: Remedy | null;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { fatalForJob: boolean; errorClass: string; attempts: number; remedy?: Remedy; cause?: unknown },
  ) {
    super(code, message, { retryable: false, cause: opts.cause, details: { errorClass: opts.errorClass, attempts: opts.attempts } });
    this.name = 'ChunkTranscriptionError';
    this.fatalForJob = opts.fatalForJob;
    this.errorClass = opts.errorClass;
    this.attempts = opts.attempts;
    this.remedy = opts.remedy ?? null;
  }
}

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  errorClass: string;
  /** Provider code, node code or "HTTP <status>", when the error had one. */
  code?: string;
}

/** Why a chunk is held before its next attempt, and until when (epoch ms), when the provider's circuit is open. */
export interface WaitInfo {
  reason: 'provider_circuit_open';
  until: number | null;
}

export interface TranscribeHooks {
  onAttempt?(attempt: number): void;
  onRetry?(info: RetryInfo): void;
  onWaiting?(info: WaitInfo): void;
}

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
  /** Drives the deadline and the waits. @default systemClock */
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

/** Rejects the moment the signal aborts, even if the provider ignores it (its slot is freed when it settles). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Tell the breaker what this outcome says about the provider's health. */
function settle(permit: CircuitPermit, decision: Decision): void {
  if (decision.action === 'retry' && decision.providerFault) permit.fail({ reason: decision.class });
  else if (decision.action === 'fail-job' && decision.openCircuit) permit.fail({ reason: decision.class, open: true, code: decision.code });
  // It answered (even 4xx or 429): it is up.
  else permit.succeed();
}

export function createChunkTranscriber(options: ChunkTranscriberOptions): ChunkTranscriber {
  const { provider, limiter, breaker, logger, maxAttempts, baseDelayMs, maxDelayMs, chunkDeadlineMs } = options;
  const { random = Math.random, clock = systemClock } = options;
  const sleep = options.sleep ?? ((ms: number, signal: AbortSignal) => defaultSleep(ms, signal, clock));
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new TypeError(`maxAttempts must be an integer >= 1, got ${maxAttempts}`);
  if (!(chunkDeadlineMs > 0)) throw new TypeError(`chunkDeadlineMs must be > 0, got ${chunkDeadlineMs}`);

  async function transcribe(input: TranscribeInput, hooks: TranscribeHooks = {}): Promise<ChunkResult> {
    const log = logger.child({ jobId: input.jobId, chunk: input.index });
    const deadlineAt = clock.now() + chunkDeadlineMs;
    const deadline = new AbortController();
    const timer = atDeadline(clock, deadlineAt, () => deadline.abort(new DeadlineExceeded(chunkDeadlineMs)));
    const signal = AbortSignal.any([input.signal, deadline.signal]);
    let last: { decision: Decision; err: unknown } | undefined;
    let attempt = 0;

    type Extra = { fatalForJob?: boolean; cause?: unknown; remedy?: Remedy; errorClass?: string };
    const fail = (code: ErrorCode, message: string, extra: Extra = {}) =>
      new ChunkTranscriptionError(code, message, {
        fatalForJob: extra.fatalForJob ?? false,
        errorClass: extra.errorClass ?? last?.decision.class ?? 'none',
        attempts: attempt,
        ...(extra.remedy !== undefined && { remedy: extra.remedy }),
        cause: extra.cause ?? last?.err,
      });
    /** Our own abort (cancel or deadline) ends the chunk whatever was in flight. */
    const stopped = (waitingForCircuit: boolean) => {
      if (input.signal.aborted) {
        return fail('CANCELLED', 'Chunk transcription was cancelled.', { cause: input.signal.reason, errorClass: 'cancelled' });
      }
      const code: ErrorCode = waitingForCircuit ? 'PROVIDER_UNAVAILABLE' : 'CHUNK_FAILED';
      return fail(code, `Chunk ${input.index} did not finish within ${chunkDeadlineMs}ms (${attempt} attempts).`);
    };

    // An answer saying the account's limit is used up holds every job until it resets, not just this one.
    const onRateLimit = (hint: RateLimitHint) => limiter.pauseFor(hint.exhaustedForMs, hint.reason);

    try {
      for (;;) {
        attempt += 1;
        let permit: CircuitPermit;
        const circuit = breaker.snapshot();
        // The admit below will hold this chunk: say so, so the job resource can tell why nothing moves.
        if (circuit.state !== 'closed' && circuit.code === 'PROVIDER_UNAVAILABLE') {
          hooks.onWaiting?.({ reason: 'provider_circuit_open', until: circuit.retryAt });
        }
        try {
          permit = await breaker.admit(signal);
        } catch (err) {
          if (err instanceof CircuitOpenError) {
            throw fail(err.code, err.message, { fatalForJob: true, cause: err, errorClass: 'circuit-open' });
          }
          if (signal.aborted) throw stopped(true);
          throw err;
        }
        hooks.onAttempt?.(attempt);
        let decision: Decision;
        try {
          log.debug({ attempt, probe: permit.probe }, 'sending chunk');
          const result = await limiter.schedule(
            () => untilAborted((async () => provider.transcribe({ ...input, signal, onRateLimit }))(), signal),
            { signal },
          );
          permit.succeed();
          log.debug({ attempt, segments: result.segments.length }, 'chunk transcribed');
          return result;
        } catch (err) {
          if (signal.aborted) {
            permit.release();
            throw stopped(false);
          }
          decision = classifyError(err);
          if (decision.action === 'cancelled') {
            permit.release();
            // Our own machinery said stop (the limiter shutting down): end now, the chunk is not at fault.
            if (isAppError(err)) throw fail('CANCELLED', err.message, { cause: err, errorClass: 'cancelled' });
            // An abort we did not ask for is not a cancellation; retry it like anything else we do not know.
            decision = { action: 'retry', class: 'unknown', providerFault: false, maxAttempts: 3 };
          } else {
            settle(permit, decision);
          }
          last = { decision, err };
        }

        const id = errorIdentifier(last.err);
        const base = { attempt, errorClass: decision.class, code: id, err: errorMessage(last.err) };
        if (decision.action === 'fail-job') {
          log.error(base, 'chunk failed; the job cannot go on');
          throw fail(decision.code, `Provider refused the request (${decision.class}): ${errorMessage(last.err)}`, { fatalForJob: true });
        }
        if (decision.action === 'fail-chunk') {
          log.warn(base, 'chunk rejected by the provider');
          throw fail(decision.code, `Provider rejected chunk ${input.index} (${decision.class}): ${errorMessage(last.err)}`);
        }
        if (decision.action === 'reshape-chunk') {
          // Same bytes, same answer: only other bytes can help, and making them is the caller's job.
          log.warn({ ...base, remedy: decision.remedy }, 'chunk refused by the provider as it is');
          const message = `Provider refused chunk ${input.index} (${decision.class}): ${errorMessage(last.err)}`;
          throw fail('PROVIDER_REJECTED', message, { remedy: decision.remedy });
        }
        const budget = Math.min(maxAttempts, decision.maxAttempts ?? maxAttempts);
        if (attempt >= budget) {
          log.warn(base, 'chunk failed; no attempts left');
          throw fail('CHUNK_FAILED', `Chunk ${input.index} failed after ${attempt} attempts (${decision.class}): ${errorMessage(last.err)}`);
        }
        const hint = decision.retryAfterMs;
        const delayMs = computeBackoffMs({ attempt, baseMs: baseDelayMs, capMs: maxDelayMs, floorMs: hint, random });
        if (clock.now() + delayMs >= deadlineAt) {
          log.warn({ ...base, delayMs }, 'chunk failed; the next attempt would pass its deadline');
          throw fail('CHUNK_FAILED', `Chunk ${input.index} failed (${decision.class}); retrying would pass its ${chunkDeadlineMs}ms deadline.`);
        }
        // The provider's wait applies to the whole account, so every job holds, not just this chunk.
        if (hint !== undefined && hint > 0) limiter.pauseFor(hint, `${decision.class} (${id ?? 'no code'})`);
        log.warn({ ...base, delayMs, retryAfterMs: hint }, 'chunk attempt failed; retrying');
        hooks.onRetry?.({ attempt, delayMs, errorClass: decision.class, ...(id !== undefined && { code: id }) });
        try {
          await sleep(delayMs, signal);
        } catch {
          throw stopped(false);
        }
        if (signal.aborted) throw stopped(false);
      }
    } finally {
      timer.cancel();
    }
  }

  return { transcribe };
}
