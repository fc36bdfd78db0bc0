import type { Transcript } from '../transcribe/types.ts';
import type { ChunkPatch, JobPatch } from './store-rows.ts';
import type { ChunkRecord, ChunkState, JobRecord, JobStatus, WebhookState } from './types.ts';

export type { ChunkPatch, JobPatch } from './store-rows.ts';

export interface ListJobsQuery {
  owner: string | null;
  status?: JobStatus;
  limit: number;
  cursor?: string;
}

/** What a poll answers: the job and its chunk states, read at one moment. Shared between callers: never change it. */
export interface PollView {
  job: JobRecord;
  chunks: ChunkState[];
}

/** One process's hold on a job's pending webhook delivery, for one attempt (see `claimWebhook`). */
export interface WebhookLease {
  /** Who holds it: one id per process (host, pid, a random part), never reused. */
  holder: string;
  /** The claimer's clock now, ISO-8601: a lease that ended at or before it is free. */
  now: string;
  /** When the lease ends unless renewed, ISO-8601. */
  until: string;
}

/**
 * What `claimWebhook` found. `held`: the delivery is this holder's until the lease ends. Otherwise `job` says
 * whether anything is owed (null: no such job) and `heldUntil` when another live holder's lease ends.
 */
export interface WebhookClaim {
  job: JobRecord | null;
  held: boolean;
  heldUntil: string | null;
}

/**
 * The job store as every other module sees it: SQLite in one file (src/jobs/store.ts, the default) or PostgreSQL
 * (src/jobs/pg-store.ts, when DATABASE_URL is set). Every method is asynchronous, and a write has been made
 * durable when its promise resolves: a state change is stored before it is reported. A read-modify-write that
 * must not interleave with other writers is one method here (e.g. `raisePercent`), never two calls.
 */
export interface JobStore {
  /** `requestFingerprint`: what the job's Idempotency-Key stands for, kept in the same write as the key. */
  insertJob(job: JobRecord, requestFingerprint?: string | null): Promise<void>;
  /** With an owner, a job of another owner is invisible (as if it did not exist). */
  getJob(id: string, owner?: string | null): Promise<JobRecord | null>;
  /**
   * The job (as getJob) and its chunk states (as listChunkStates), read together; kept between writes so that
   * frequent polls are cheap, and read again after any write, by this process or another one.
   */
  pollView(id: string, owner?: string | null): Promise<PollView | null>;
  /** The job created with this key, and the fingerprint of the request that created it (null for older jobs). */
  findByIdempotencyKey(
    owner: string | null,
    key: string,
  ): Promise<{ job: JobRecord; requestFingerprint: string | null } | null>;
  listJobs(query: ListJobsQuery): Promise<{ items: JobRecord[]; nextCursor: string | null }>;
  /**
   * Takes the job up for a new run: raises its run epoch, the fencing token every write of that run carries (see
   * src/jobs/run-fence.ts), so an earlier run's late writes are refused from here on. Null when the job is gone or
   * has ended (nothing to run).
   */
  takeRun(id: string): Promise<number | null>;
  /**
   * With `whileLive`, the write applies only to a job still queued or processing (an end state is never
   * overwritten by a late writer); resolves whether a job row was changed.
   *
   * `fence` (here and on every write below): the run epoch of the writer. The write applies only while it is still
   * the job's, checked in the same statement; otherwise nothing is written and RunSupersededError is thrown.
   */
  updateJob(id: string, patch: JobPatch, options?: { whileLive?: boolean; fence?: number }): Promise<boolean>;
  /** Raises the stored percent only: the contract says it never goes down. */
  raisePercent(id: string, percent: number, fence?: number): Promise<void>;
  /** Records a chunk's place; a chunk already transcribed keeps its result (resume after restart). */
  upsertChunk(jobId: string, index: number, startS: number, durationS: number, fence?: number): Promise<ChunkRecord>;
  getChunk(jobId: string, index: number): Promise<ChunkRecord | null>;
  /** Chunks that were with the provider when their process stopped have no result: they go again. */
  resetChunksInFlight(jobId: string, fence?: number): Promise<void>;
  updateChunk(jobId: string, index: number, patch: ChunkPatch, fence?: number): Promise<void>;
  listChunks(jobId: string): Promise<ChunkRecord[]>;
  /** The chunks' states without their results (no result JSON is read or parsed): enough for progress. */
  listChunkStates(jobId: string): Promise<ChunkState[]>;
  /** Chunks past the real count (planned before slicing knew better) are dropped when slicing ends. */
  deleteChunksFrom(jobId: string, index: number, fence?: number): Promise<void>;
  saveTranscript(jobId: string, transcript: Transcript, fence?: number): Promise<void>;
  getTranscript(jobId: string): Promise<Transcript | null>;
  /** Jobs a previous process accepted but did not finish. */
  unfinishedJobs(): Promise<JobRecord[]>;
  /** Status and end time only (no JSON parsing), for the cleanup's per-directory decisions. */
  jobLifecycle(id: string): Promise<{ status: JobStatus; endedAt: string | null } | null>;
  /** Ended jobs (completed, failed, cancelled) that ended before `before`, oldest first. */
  endedJobsBefore(before: string, limit: number): Promise<string[]>;
  /** Ended jobs whose callback is still owed: pending, or never started because the process died as the job ended. */
  webhookBacklog(): Promise<JobRecord[]>;
  /** Records the delivery as owed (`state`, pending) unless a state is already stored; resolves whether it wrote. */
  oweWebhook(jobId: string, state: WebhookState): Promise<boolean>;
  /**
   * Claims the job's pending delivery for one attempt, atomically: only when no other holder's lease is live, so
   * two processes (or hosts) never send the same event at the same time, nor one process twice; a dead holder's
   * lease ends and the delivery is taken over.
   */
  claimWebhook(jobId: string, lease: WebhookLease): Promise<WebhookClaim>;
  /** Moves the lease's end while the attempt runs; false when it is no longer this holder's. */
  renewWebhook(jobId: string, holder: string, until: string): Promise<boolean>;
  /**
   * Ends the holder's lease, storing the attempt's outcome (`state`) in the same write, or keeping the stored
   * state without one; false (nothing written) when the lease is no longer the holder's.
   */
  settleWebhook(jobId: string, holder: string, state?: WebhookState): Promise<boolean>;
  /**
   * Ends every delivery lease not held by `holder`, keeping each delivery's stored state; resolves how many. Only
   * for a process that knows it is the store's one user (the DATA_DIR lock's holder, on its own SQLite file): the
   * other holders are earlier lives of it, dead, whose leases would hold their deliveries back until they end.
   */
  releaseWebhookLeases(holder: string): Promise<number>;
  jobIds(): Promise<Set<string>>;
  countByStatus(): Promise<Record<string, number>>;
  /** How many of this owner's jobs are queued or processing. */
  liveJobsOf(owner: string): Promise<number>;
  deleteJob(id: string): Promise<void>;
  /** A cheap query that proves the store answers (for /health/ready); throws when it does not. */
  ping(): Promise<void>;
  /** What /health/ready names the store by ("sqlite", "postgresql"). */
  readonly kind: string;
  close(): Promise<void>;
}
