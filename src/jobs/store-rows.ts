import type { SQLInputValue, SQLOutputValue } from 'node:sqlite';
import { AppError, type ErrorCode } from '../errors.ts';
import { isJobId } from './ids.ts';
import { RunSupersededError } from './run-fence.ts';
import type { WebhookClaim } from './job-store.ts';
import {
  isLive,
  JOB_STATUSES,
  type ChunkRecord,
  type ChunkState,
  type ChunkStatus,
  type JobRecord,
  type JobStage,
  type JobStatus,
} from './types.ts';

/**
 * How the store's records map to rows and back, for SQLite and PostgreSQL alike: the column names, the JSON
 * columns (text in both), the list cursor.
 */

/** The job fields a write may change (the rest are set once, at insert). */
export type JobPatch = Partial<
  Pick<
    JobRecord,
    | 'status'
    | 'stage'
    | 'completedAt'
    | 'chunksTotal'
    | 'slicingDone'
    | 'percent'
    | 'transcribingStartedAt'
    | 'errorCode'
    | 'errorMessage'
    | 'webhook'
    | 'chunkPlan'
  >
>;

export type ChunkPatch = Partial<
  Pick<ChunkRecord, 'status' | 'attempts' | 'nextTryAt' | 'errorCode' | 'errorMessage' | 'result'>
>;

export type Row = Record<string, SQLInputValue>;

/**
 * After a fenced write that changed nothing, the job's row as read then (`run_epoch`): the write was refused if
 * the job's epoch is no longer the writer's. A job that is gone refuses nothing: there is no run to protect.
 */
export function checkFence(jobId: string, fence: number, row: Row | undefined): void {
  if (row && Number(row.run_epoch) !== fence) throw new RunSupersededError(jobId, fence);
}

const statusList = (statuses: readonly JobStatus[]) => `(${statuses.map((s) => `'${s}'`).join(', ')})`;
/** SQL lists of the end states and the live states, as both stores' queries spell them. */
export const ENDED_STATUSES = statusList(JOB_STATUSES.filter((s) => !isLive(s)));
export const LIVE_STATUSES = statusList(JOB_STATUSES.filter(isLive));
/** When a job ended. An ended job always has completed_at; updated_at covers rows written before that was so. */
export const ENDED_AT = `CASE WHEN status IN ${ENDED_STATUSES} THEN coalesce(completed_at, updated_at) END`;

export const JOB_COLUMNS: Record<keyof JobPatch, string> = {
  status: 'status',
  stage: 'stage',
  completedAt: 'completed_at',
  chunksTotal: 'chunks_total',
  slicingDone: 'slicing_done',
  percent: 'percent',
  transcribingStartedAt: 'transcribing_started_at',
  errorCode: 'error_code',
  errorMessage: 'error_message',
  webhook: 'webhook_json',
  chunkPlan: 'chunk_plan_json',
};

export const CHUNK_COLUMNS: Record<keyof ChunkPatch, string> = {
  status: 'status',
  attempts: 'attempts',
  nextTryAt: 'next_try_at',
  errorCode: 'error_code',
  errorMessage: 'error_message',
  result: 'result_json',
};

/**
 * A chunk's columns in the order `chunkStateOf` reads them. Chunks are read as arrays, which node:sqlite builds at
 * about half the cost of row objects (polls read them many times a second).
 */
const CHUNK_STATE_BASE = 'job_id, idx, start_s, duration_s, status, attempts, next_try_at, error_code, error_message';
export const CHUNK_STATE_COLUMNS = `${CHUNK_STATE_BASE}, json_extract(result_json, '$.language')`;
/** The same columns in PostgreSQL, whose result_json is text too. */
export const PG_CHUNK_STATE_COLUMNS = `${CHUNK_STATE_BASE}, (result_json::json ->> 'language')`;

/**
 * Every jobs column but the transcript: a poll reads the job row many times a second, and copying a long
 * recording's transcript out each time was most of its cost. A column added to the schema is added here.
 */
export const JOB_READ_COLUMNS =
  'id, owner, status, stage, created_at, updated_at, completed_at, audio_json, request_json, estimate_json, ' +
  'chunks_total, slicing_done, percent, transcribing_started_at, error_code, error_message, idempotency_key, ' +
  'key_name, webhook_json, chunk_plan_json, request_fingerprint';

/** The columns a new job's row is written with, and its values in that order (`jobInsertValues`). */
export const JOB_INSERT_COLUMNS =
  'id, owner, status, stage, created_at, updated_at, completed_at, audio_json, request_json, estimate_json, ' +
  'chunks_total, slicing_done, percent, transcribing_started_at, error_code, error_message, idempotency_key, ' +
  'key_name, request_fingerprint';

export function jobInsertValues(job: JobRecord, requestFingerprint: string | null): SQLInputValue[] {
  return [
    job.id,
    job.owner,
    job.status,
    job.stage,
    job.createdAt,
    job.updatedAt,
    job.completedAt,
    job.audio,
    job.request,
    job.estimate,
    job.chunksTotal,
    job.slicingDone,
    job.percent,
    job.transcribingStartedAt,
    job.errorCode,
    job.errorMessage,
    job.idempotencyKey,
    job.keyName ?? null,
    requestFingerprint,
  ].map(toSql);
}

/** A patch's fields that are set, as their columns and SQL values (undefined: the column is left as it is). */
export function patchColumns<P extends object>(
  patch: P,
  columns: Record<keyof P, string>,
): Array<{ column: string; value: SQLInputValue }> {
  return (Object.entries(patch) as Array<[keyof P, unknown]>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ({ column: columns[k], value: toSql(v) }));
}

export function toSql(value: unknown): SQLInputValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'object') return JSON.stringify(value);
  return value as SQLInputValue;
}

export function rowToJob(r: Row): JobRecord {
  return {
    id: r.id as string,
    owner: (r.owner as string | null) ?? null,
    status: r.status as JobStatus,
    stage: (r.stage as JobStage | null) ?? null,
    createdAt: r.created_at as string,
    updatedAt: r.updated_at as string,
    completedAt: (r.completed_at as string | null) ?? null,
    audio: JSON.parse(r.audio_json as string),
    request: JSON.parse(r.request_json as string),
    estimate: JSON.parse(r.estimate_json as string),
    chunksTotal: Number(r.chunks_total),
    slicingDone: Number(r.slicing_done) === 1,
    percent: Number(r.percent),
    transcribingStartedAt: (r.transcribing_started_at as string | null) ?? null,
    errorCode: (r.error_code as ErrorCode | null) ?? null,
    errorMessage: (r.error_message as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    keyName: (r.key_name as string | null) ?? null,
    webhook: typeof r.webhook_json === 'string' ? JSON.parse(r.webhook_json) : null,
    chunkPlan: typeof r.chunk_plan_json === 'string' ? JSON.parse(r.chunk_plan_json) : null,
  };
}

/** A webhook claim that was not taken, from the job's row (JOB_READ_COLUMNS and webhook_lease_until) if any. */
export function unclaimed(r: Row | undefined): WebhookClaim {
  if (!r) return { job: null, held: false, heldUntil: null };
  return { job: rowToJob(r), held: false, heldUntil: (r.webhook_lease_until as string | null) ?? null };
}

/** A chunk selected as CHUNK_STATE_COLUMNS. */
export function chunkStateOf(values: readonly SQLOutputValue[]): ChunkState {
  const [jobId, idx, startS, durationS, status, attempts, nextTryAt, errorCode, errorMessage, language] = values;
  return {
    jobId: jobId as string,
    index: Number(idx),
    startS: Number(startS),
    durationS: Number(durationS),
    status: status as ChunkStatus,
    attempts: Number(attempts),
    nextTryAt: (nextTryAt as string | null) ?? null,
    errorCode: (errorCode as ErrorCode | null) ?? null,
    errorMessage: (errorMessage as string | null) ?? null,
    language: (language as string | null) ?? null,
  };
}

/** A chunk selected as CHUNK_STATE_COLUMNS followed by result_json. */
export function chunkOf(values: readonly SQLOutputValue[]): ChunkRecord {
  const result = values[10];
  return { ...chunkStateOf(values), result: typeof result === 'string' ? JSON.parse(result) : null };
}

/**
 * The (created_at, id) a list continues after: null for the first page (no cursor, or an empty one, as an HTML
 * form sends). A cursor this server did not give is refused: ignoring it would answer the first page again.
 */
export function listAfter(cursor: string | undefined): [string, string] | null {
  if (!cursor) return null;
  const after = decodeCursor(cursor);
  if (after === null) {
    throw new AppError(
      'INVALID_FIELD',
      'cursor is not a next_cursor this server gave; send it unchanged, or leave it out for the first page',
      { details: { field: 'cursor' } },
    );
  }
  return after;
}

/** A page of a list read with one row more than `limit`: that row only says whether there is a next page. */
export function listPage(rows: Row[], limit: number): { items: JobRecord[]; nextCursor: string | null } {
  const items = rows.slice(0, limit).map(rowToJob);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

export function encodeCursor(job: JobRecord): string {
  return Buffer.from(`${job.createdAt}|${job.id}`).toString('base64url');
}

/** An ISO-8601 UTC timestamp as Date.toISOString writes it, which is how created_at is stored. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A cursor is base64url of "<created_at>|<job id>": 24 + 1 + 26 bytes, about 68 characters; room to spare. */
const MAX_CURSOR_CHARS = 128;

/**
 * The (created_at, id) a cursor continues after, or null when it is not one encodeCursor made: the caller must
 * refuse it, since ignoring it would silently answer the first page again.
 */
export function decodeCursor(cursor: string): [string, string] | null {
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (parts.length !== 2) return null;
  const [createdAt = '', id = ''] = parts;
  if (!ISO_TIMESTAMP.test(createdAt) || Number.isNaN(Date.parse(createdAt)) || !isJobId(id)) return null;
  return [createdAt, id];
}
