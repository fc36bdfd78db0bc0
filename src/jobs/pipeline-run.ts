import type { ChunkSource } from '../chunker/chunk-source.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import type { StorageGuard } from '../resources/storage-guard.ts';
import type { UploadStore } from '../storage/upload-store.ts';
import type { TranscribeHooks } from '../transcribe/chunk-outcome.ts';
import type { ChunkResult, TranscribeInput } from '../transcribe/types.ts';
import type { JobStore } from './job-store.ts';

export interface PipelineDeps {
  store: JobStore;
  dirs: JobDirs;
  /** Where the upload is kept: with an object store, a job run on another host than the upload's gets it here. */
  uploads: Pick<UploadStore, 'fetch'>;
  /** Where writes that fail for lack of space wait for it (the job pauses instead of failing). */
  storage: Pick<StorageGuard, 'run' | 'attempt' | 'report' | 'writable'>;
  /** Plans a fresh job's chunks, keeps a resumed job's plan, and cuts the chunk files. */
  chunks: Pick<ChunkSource, 'planChunks' | 'resume' | 'open'>;
  transcribe(input: TranscribeInput, hooks: TranscribeHooks): Promise<ChunkResult>;
  concurrency: number;
  maxFailedChunkRatio: number;
  now: () => Date;
}

/** What one run of a job is stopped by, and what it is. */
export interface RunSignals {
  /** Cancel (or the loss of the job): everything stops. */
  abort: AbortSignal;
  /** Shutdown: no new requests; those in flight may finish and store their results. */
  drain: AbortSignal;
  /** The run's epoch (JobStore.takeRun): its chunk files go to a directory of its own. */
  epoch: number;
  /**
   * Whether the runner still holds the job, asked right before each provider request: false stops the job before
   * the request leaves (a runner that woke up past its queue lock sends nothing). Absent: always held.
   */
  held?: () => boolean;
}

/** Thrown when the service stops before the job finished: the job stays `processing` and resumes at the next start. */
export class ShutdownSignal extends Error {
  constructor() {
    super('service shutting down');
    this.name = 'ShutdownSignal';
  }
}

/**
 * A write the job cannot go on without: on a full volume it waits for space (the job pauses) until `until` is
 * aborted or DISK_FULL_MAX_WAIT_S has passed.
 */
export type Save = <T>(what: string, write: () => T | Promise<T>, until?: AbortSignal) => Promise<T>;
