import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../errors.ts';
import type { CircuitPermit } from './circuit-breaker.ts';
import { failureSummary, type Decision, type Remedy } from './retry-policy.ts';
import type { TranscribeInput } from './types.ts';

/*
 * What one chunk's failed attempt means: the breaker told, and a retry or the error that ends the chunk (or the
 * job). Pure decisions over the chunk's run; the transcriber (chunk-transcriber.ts) does the waiting and calling.
 */

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
    super(code, message, {
      retryable: false,
      cause: opts.cause,
      details: { errorClass: opts.errorClass, attempts: opts.attempts },
    });
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

/** What the caller of `transcribe` hears of a chunk's attempts (the pipeline notes them in the chunk's row). */
export interface TranscribeHooks {
  onAttempt?(attempt: number): void;
  onRetry?(info: RetryInfo): void;
  /** The chunk is held before its next attempt (the provider's circuit is open). */
  onWaiting?(info: WaitInfo): void;
}

/** Tell the breaker what this outcome says about the provider's health. */
export function settle(permit: CircuitPermit, decision: Decision): void {
  if (decision.action === 'retry' && decision.providerFault) permit.fail({ reason: decision.class });
  else if (decision.action === 'fail-job' && decision.openCircuit)
    permit.fail({ reason: decision.class, open: true, code: decision.code });
  // It answered (even 4xx or 429): it is up.
  else permit.succeed();
}

/** One chunk's way through its attempts: its deadline, the signal that ends it, and what failed last. */
export interface ChunkRun {
  input: TranscribeInput;
  hooks: TranscribeHooks;
  log: Logger;
  /** The caller's signal or the chunk's deadline, whichever comes first. */
  signal: AbortSignal;
  deadlineAt: number;
  attempt: number;
  last: { decision: Decision; err: unknown } | undefined;
}

type FailExtra = { fatalForJob?: boolean; cause?: unknown; remedy?: Remedy; errorClass?: string };

export function fail(run: ChunkRun, code: ErrorCode, message: string, extra: FailExtra = {}): ChunkTranscriptionError {
  return new ChunkTranscriptionError(code, message, {
    fatalForJob: extra.fatalForJob ?? false,
    errorClass: extra.errorClass ?? run.last?.decision.class ?? 'none',
    attempts: run.attempt,
    ...(extra.remedy !== undefined && { remedy: extra.remedy }),
    cause: extra.cause ?? run.last?.err,
  });
}

/** The end of a failure's message for the job's owner (the engine's own words are logged, not stored). */
function said(err: unknown): string {
  const summary = failureSummary(err);
  return summary === '' ? '' : `: ${summary}`;
}

/** A decision on a failure that is not a cancellation (those end the chunk where they are caught). */
export type Actionable = Exclude<Decision, { action: 'cancelled' }>;

/** A retry, or a failure that ends the chunk (or the job) now, with what to say about it. */
type Verdict = { decision: Extract<Decision, { action: 'retry' }> } | { error: ChunkTranscriptionError };

/** What the policy's decision means for this chunk: a retry only while the attempt budget lasts. `fields` are logged. */
export function verdictOn(
  run: ChunkRun,
  decision: Actionable,
  err: unknown,
  maxAttempts: number,
  fields: Record<string, unknown>,
): Verdict {
  const { input } = run;
  switch (decision.action) {
    case 'fail-job':
      run.log.error(fields, 'chunk failed; the job cannot go on');
      return {
        error: fail(run, decision.code, `Provider refused the request (${decision.class})${said(err)}`, {
          fatalForJob: true,
        }),
      };
    case 'fail-chunk':
      run.log.warn(fields, 'chunk rejected by the provider');
      return {
        error: fail(run, decision.code, `Provider rejected chunk ${input.index} (${decision.class})${said(err)}`),
      };
    case 'reshape-chunk': {
      // Same bytes, same answer: only other bytes can help, and making them is the caller's job.
      run.log.warn({ ...fields, remedy: decision.remedy }, 'chunk refused by the provider as it is');
      const message = `Provider refused chunk ${input.index} (${decision.class})${said(err)}`;
      return { error: fail(run, 'PROVIDER_REJECTED', message, { remedy: decision.remedy }) };
    }
    case 'retry':
      break;
  }
  const budget = Math.min(maxAttempts, decision.maxAttempts ?? maxAttempts);
  if (run.attempt >= budget) {
    run.log.warn(fields, 'chunk failed; no attempts left');
    return {
      error: fail(
        run,
        'CHUNK_FAILED',
        `Chunk ${input.index} failed after ${run.attempt} attempts (${decision.class})${said(err)}`,
      ),
    };
  }
  return { decision };
}
