import type { JobStore } from './job-store.ts';

/*
 * A job may be run by one runner at a time, but "at a time" is only as good as the lock that says so: a worker that
 * was frozen past its queue lock (a GC pause, SIGSTOP, a partition) wakes up still running a job another worker has
 * taken over. Two things make that safe by construction:
 * - the fencing token: each runner that takes a job raises the job's run epoch (`JobStore.takeRun`) and every write
 *   it makes carries that epoch; the store refuses a write whose epoch is no longer the job's, in the same statement;
 * - the lease: where the hold comes from outside the process (the scale-out queue's lock), the runner asks it right
 *   before each provider request, so a runner that woke up past its lock sends nothing, even before it has heard
 *   that the lock is gone.
 */

/** A write carried an epoch that is no longer the job's: another runner took the job over. */
export class RunSupersededError extends Error {
  readonly jobId: string;
  readonly epoch: number;
  constructor(jobId: string, epoch: number) {
    super(`run ${epoch} of job ${jobId} was superseded by a later run`);
    this.name = 'RunSupersededError';
    this.jobId = jobId;
    this.epoch = epoch;
  }
}

/** The reason a run stops when its hold on the job is lost (the queue lock, or a refused fenced write). */
export class RunLostError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`this runner no longer holds the job: ${detail}`, options);
    this.name = 'RunLostError';
  }
}

export const isRunLost = (err: unknown): boolean => err instanceof RunLostError || err instanceof RunSupersededError;

/** A runner's hold on a job granted from outside the process (the scale-out queue's lock). */
export interface RunLease {
  /** Aborted (with a RunLostError) once the hold is known lost. */
  readonly lost: AbortSignal;
  /** Whether the hold is certain now; false once its end has passed unrenewed (and `lost` is then aborted). */
  held(): boolean;
}

/** The writes a runner makes for its job: each one carries its run's epoch. */
type FencedWrites = Pick<
  JobStore,
  | 'updateJob'
  | 'raisePercent'
  | 'upsertChunk'
  | 'updateChunk'
  | 'resetChunksInFlight'
  | 'deleteChunksFrom'
  | 'saveTranscript'
>;

/**
 * The store as one run sees it: every write for a job carries `epoch`, and a refused one (RunSupersededError) is
 * reported to `onSuperseded` before it is thrown, so the run stops at the first refusal wherever it happened.
 * Reads pass through.
 */
export function fencedStore(store: JobStore, epoch: number, onSuperseded: (err: RunSupersededError) => void): JobStore {
  const guard = async <T>(write: Promise<T>): Promise<T> => {
    try {
      return await write;
    } catch (err) {
      if (err instanceof RunSupersededError) onSuperseded(err);
      throw err;
    }
  };
  const writes: FencedWrites = {
    updateJob: (id, patch, options) => guard(store.updateJob(id, patch, { ...options, fence: epoch })),
    raisePercent: (id, percent) => guard(store.raisePercent(id, percent, epoch)),
    upsertChunk: (jobId, index, startS, durationS) => guard(store.upsertChunk(jobId, index, startS, durationS, epoch)),
    updateChunk: (jobId, index, patch) => guard(store.updateChunk(jobId, index, patch, epoch)),
    resetChunksInFlight: (jobId) => guard(store.resetChunksInFlight(jobId, epoch)),
    deleteChunksFrom: (jobId, index) => guard(store.deleteChunksFrom(jobId, index, epoch)),
    saveTranscript: (jobId, transcript) => guard(store.saveTranscript(jobId, transcript, epoch)),
  };
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(writes, prop)) return writes[prop as keyof FencedWrites];
      const value: unknown = Reflect.get(target, prop, target);
      // The stores keep private fields: their methods must run on the store itself, not on the proxy.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
