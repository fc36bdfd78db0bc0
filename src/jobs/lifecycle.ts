import { isAppError, type ErrorCode } from '../errors.ts';
import type { Transcript } from '../transcribe/types.ts';
import type { JobStore } from './job-store.ts';
import type { AudioInfo, CostEstimate, JobRecord, JobRequest } from './types.ts';

/*
 * Every change of a job's status (and stage) is written here, so what each one sets and clears is said once:
 *   queued --markProcessing--> processing (slicing --markTranscribing--> transcribing --markSlicingDone--> stitching)
 *   processing --markCompleted | markFailed | markCancelled--> completed | failed | cancelled
 * A job may also be failed or cancelled while still queued, never once ended: those two writes apply only to a
 * live job, in the same statement, so a late writer (another host, the queue giving up) cannot overwrite an end.
 * Callers decide when a write may wait for disk space.
 */

type JobWriter = Pick<JobStore, 'updateJob'>;

export interface NewJobFields {
  id: string;
  owner: string | null;
  audio: AudioInfo;
  request: JobRequest;
  estimate: CostEstimate;
  /** The chunk count planned from the duration, shown until slicing knows the real one. */
  plannedChunks: number;
  idempotencyKey: string | null;
  keyName: string | null;
}

/** A job accepted at `at`, queued: the row the upload inserts. */
export function newJob(fields: NewJobFields, at: Date): JobRecord {
  const now = at.toISOString();
  return {
    id: fields.id,
    owner: fields.owner,
    status: 'queued',
    stage: null,
    createdAt: now,
    updatedAt: now,
    completedAt: null,
    audio: fields.audio,
    request: fields.request,
    estimate: fields.estimate,
    chunksTotal: fields.plannedChunks,
    slicingDone: false,
    percent: 0,
    transcribingStartedAt: null,
    errorCode: null,
    errorMessage: null,
    idempotencyKey: fields.idempotencyKey,
    keyName: fields.keyName,
  };
}

/** A runner took the job up (fresh, or resumed after a stop): slicing starts, an earlier run's error is cleared. */
export async function markProcessing(store: JobWriter, id: string): Promise<void> {
  await store.updateJob(id, { status: 'processing', stage: 'slicing', errorCode: null, errorMessage: null });
}

/** The first chunk went to the provider; a resumed job keeps the time its first run started transcribing. */
export async function markTranscribing(
  store: JobWriter,
  job: Pick<JobRecord, 'id' | 'transcribingStartedAt'>,
  at: Date,
): Promise<void> {
  await store.updateJob(job.id, {
    stage: 'transcribing',
    transcribingStartedAt: job.transcribingStartedAt ?? at.toISOString(),
  });
}

/** Slicing ended with `count` chunks: rows planned past the real count are dropped, and stitching is next. */
export async function markSlicingDone(
  store: JobWriter & Pick<JobStore, 'deleteChunksFrom'>,
  id: string,
  count: number,
): Promise<void> {
  await store.deleteChunksFrom(id, count);
  await store.updateJob(id, { slicingDone: true, chunksTotal: count, stage: 'stitching' });
}

/** The transcript is stored, then the job is completed: a client that sees `completed` finds the transcript. */
export async function markCompleted(
  store: JobWriter & Pick<JobStore, 'saveTranscript'>,
  id: string,
  transcript: Transcript,
  at: Date,
): Promise<void> {
  await store.saveTranscript(id, transcript);
  await store.updateJob(id, { status: 'completed', stage: null, percent: 100, completedAt: at.toISOString() });
}

export interface JobFailure {
  code: ErrorCode;
  message: string;
}

/** What a failed job shows for the error that ended it: its own code and words, or INTERNAL without details. */
export function failureOf(err: unknown): JobFailure {
  if (isAppError(err)) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: 'The job failed because of an internal error.' };
}

/** Resolves false when the job had already ended (or is gone): nothing was written. */
export function markFailed(store: JobWriter, id: string, failure: JobFailure, at: Date): Promise<boolean> {
  return store.updateJob(
    id,
    {
      status: 'failed',
      stage: null,
      errorCode: failure.code,
      errorMessage: failure.message,
      completedAt: at.toISOString(),
    },
    { whileLive: true },
  );
}

/** Resolves false when the job had already ended (or is gone): nothing was written. */
export function markCancelled(store: JobWriter, id: string, at: Date): Promise<boolean> {
  return store.updateJob(id, { status: 'cancelled', stage: null, completedAt: at.toISOString() }, { whileLive: true });
}
