import type { SQLInputValue, SQLOutputValue } from 'node:sqlite';
import type { Transcript } from '../transcribe/types.ts';
import type { JobStore, ListJobsQuery, PollView } from './job-store.ts';
import { PollCache, visibleTo } from './poll-cache.ts';
import { StoreWithWebhookRows } from './webhook-rows.ts';
import { SqliteDb } from './sqlite-db.ts';
import { sqliteWebhookRows } from './sqlite-webhooks.ts';
import {
  CHUNK_COLUMNS,
  CHUNK_STATE_COLUMNS,
  checkFence,
  chunkOf,
  chunkStateOf,
  ENDED_AT,
  ENDED_STATUSES,
  JOB_COLUMNS,
  JOB_INSERT_COLUMNS,
  JOB_READ_COLUMNS,
  jobInsertValues,
  listAfter,
  listPage,
  LIVE_STATUSES,
  rowToJob,
  patchColumns,
  type ChunkPatch,
  type JobPatch,
  type Row,
} from './store-rows.ts';
import type { ChunkRecord, ChunkState, JobRecord, JobStatus } from './types.ts';

export interface JobStoreOptions {
  /** SQLite file, or ':memory:'. */
  file: string;
  now?: () => Date;
  /**
   * Other processes write to the file too (scale-out): the poll cache then checks SQLite's data version on
   * every read. Alone, every write passes through this store and counting them is enough. @default false
   */
  shared?: boolean;
}

/** A fenced job write applies only while the job's run epoch is the writer's (src/jobs/run-fence.ts). */
const JOB_FENCE = (fence: number | undefined) => (fence === undefined ? '' : ' AND run_epoch = ?');
const fenceParams = (fence: number | undefined): SQLInputValue[] => (fence === undefined ? [] : [fence]);
/** A fenced chunk write: the same check on the chunk's job, in the same statement. */
const CHUNK_FENCE = 'EXISTS (SELECT 1 FROM jobs WHERE id = ? AND run_epoch = ?)';
const chunkFenceParams = (jobId: string, fence: number | undefined): SQLInputValue[] =>
  fence === undefined ? [] : [jobId, fence];

/**
 * The job store on one SQLite file (the default): synchronous writes inside, so every state change is on disk
 * before its promise resolves and calls apply in the order they were made. WAL keeps polling reads from blocking
 * the runner's writes.
 */
export class SqliteJobStore extends StoreWithWebhookRows implements JobStore {
  readonly kind = 'sqlite';
  readonly #db: SqliteDb;
  readonly #now: () => Date;
  readonly #pollCache = new PollCache<string>();

  constructor(options: JobStoreOptions) {
    const db = new SqliteDb(options.file, options.shared ?? false);
    const now = options.now ?? (() => new Date());
    super(sqliteWebhookRows(db, now));
    this.#db = db;
    this.#now = now;
  }

  /**
   * Served again without reading the rows while nothing was written anywhere: clients poll many times a second,
   * and reading and parsing the rows was most of a poll's cost.
   */
  async pollView(id: string, owner?: string | null): Promise<PollView | null> {
    const version = this.#db.version();
    let view = this.#pollCache.get(id, version);
    if (!view) {
      const job = this.#getJob(id);
      if (!job) {
        this.#pollCache.delete(id);
        return null;
      }
      view = { job, chunks: this.#chunkStates(id) };
      this.#pollCache.set(id, version, view);
    }
    return visibleTo(view, owner);
  }

  async insertJob(job: JobRecord, requestFingerprint: string | null = null): Promise<void> {
    const values = jobInsertValues(job, requestFingerprint);
    this.#db
      .write(`INSERT INTO jobs (${JOB_INSERT_COLUMNS}) VALUES (${values.map(() => '?').join(', ')})`)
      .run(...values);
  }

  async getJob(id: string, owner?: string | null): Promise<JobRecord | null> {
    return this.#getJob(id, owner);
  }

  #getJob(id: string, owner?: string | null): JobRecord | null {
    const row = this.#db.cached(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE id = ?`).get(id) as Row | undefined;
    if (!row) return null;
    const job = rowToJob(row);
    return owner !== undefined && job.owner !== owner ? null : job;
  }

  async findByIdempotencyKey(
    owner: string | null,
    key: string,
  ): Promise<{ job: JobRecord; requestFingerprint: string | null } | null> {
    const row = this.#db
      .read(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE ifnull(owner, '') = ? AND idempotency_key = ?`)
      .get(owner ?? '', key) as Row | undefined;
    return row ? { job: rowToJob(row), requestFingerprint: (row.request_fingerprint as string | null) ?? null } : null;
  }

  async listJobs(query: ListJobsQuery): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const where: string[] = ["ifnull(owner, '') = ?"];
    const params: SQLInputValue[] = [query.owner ?? ''];
    if (query.status) {
      where.push('status = ?');
      params.push(query.status);
    }
    const after = listAfter(query.cursor);
    if (after) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(after[0], after[0], after[1]);
    }
    const rows = this.#db
      .read(
        `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`,
      )
      .all(...params, query.limit + 1) as Row[];
    return listPage(rows, query.limit);
  }

  async takeRun(id: string): Promise<number | null> {
    const row = this.#db
      .write(
        `UPDATE jobs SET run_epoch = run_epoch + 1 WHERE id = ? AND status IN ${LIVE_STATUSES} RETURNING run_epoch`,
      )
      .get(id);
    return row ? Number(row.run_epoch) : null;
  }

  /** A fenced write that changed nothing: was it refused? (SQLite's write lock made the write's own check exact.) */
  #checkFence(jobId: string, fence: number | undefined): void {
    if (fence === undefined) return;
    checkFence(jobId, fence, this.#db.read('SELECT run_epoch FROM jobs WHERE id = ?').get(jobId) as Row | undefined);
  }

  async updateJob(
    id: string,
    patch: JobPatch,
    options: { whileLive?: boolean; fence?: number } = {},
  ): Promise<boolean> {
    const set = patchColumns(patch, JOB_COLUMNS);
    const sets = set.map(({ column }) => `${column} = ?`);
    const live = options.whileLive ? ` AND status IN ${LIVE_STATUSES}` : '';
    const { fence } = options;
    const sql = `UPDATE jobs SET ${[...sets, 'updated_at = ?'].join(', ')} WHERE id = ?${live}${JOB_FENCE(fence)}`;
    const params = [...set.map(({ value }) => value), this.#now().toISOString(), id, ...fenceParams(fence)];
    const changed = this.#db.write(sql).run(...params) > 0;
    if (!changed) this.#checkFence(id, fence);
    return changed;
  }

  async raisePercent(id: string, percent: number, fence?: number): Promise<void> {
    const sql = `UPDATE jobs SET percent = max(percent, ?) WHERE id = ?${JOB_FENCE(fence)}`;
    if (this.#db.write(sql).run(percent, id, ...fenceParams(fence)) === 0) this.#checkFence(id, fence);
  }

  async upsertChunk(
    jobId: string,
    index: number,
    startS: number,
    durationS: number,
    fence?: number,
  ): Promise<ChunkRecord> {
    // INSERT ... SELECT so that the fence can apply to the insert too (an upsert's SELECT needs its WHERE).
    const changes = this.#db
      .write(
        `INSERT INTO chunks (job_id, idx, start_s, duration_s, status) SELECT ?, ?, ?, ?, 'pending'
       WHERE ${fence === undefined ? 'true' : CHUNK_FENCE}
       ON CONFLICT (job_id, idx) DO UPDATE SET start_s = excluded.start_s, duration_s = excluded.duration_s
       WHERE chunks.status != 'done'`,
      )
      .run(jobId, index, startS, durationS, ...chunkFenceParams(jobId, fence));
    if (changes === 0) this.#checkFence(jobId, fence);
    return this.#getChunk(jobId, index) as ChunkRecord;
  }

  async getChunk(jobId: string, index: number): Promise<ChunkRecord | null> {
    return this.#getChunk(jobId, index);
  }

  #getChunk(jobId: string, index: number): ChunkRecord | null {
    const statement = this.#db.cached(
      `SELECT ${CHUNK_STATE_COLUMNS}, result_json FROM chunks WHERE job_id = ? AND idx = ?`,
    );
    statement.setReturnArrays(true);
    const values = statement.get(jobId, index) as unknown as SQLOutputValue[] | undefined;
    return values ? chunkOf(values) : null;
  }

  async resetChunksInFlight(jobId: string, fence?: number): Promise<void> {
    const changes = this.#db
      .write(
        `UPDATE chunks SET status = 'pending', next_try_at = NULL
         WHERE job_id = ? AND status IN ('sending', 'retrying')${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`,
      )
      .run(jobId, ...chunkFenceParams(jobId, fence));
    if (changes === 0) this.#checkFence(jobId, fence);
  }

  async updateChunk(jobId: string, index: number, patch: ChunkPatch, fence?: number): Promise<void> {
    const set = patchColumns(patch, CHUNK_COLUMNS);
    if (set.length === 0) return;
    const sets = set.map(({ column }) => `${column} = ?`).join(', ');
    const sql = `UPDATE chunks SET ${sets} WHERE job_id = ? AND idx = ?${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`;
    const params = [...set.map(({ value }) => value), jobId, index, ...chunkFenceParams(jobId, fence)];
    if (this.#db.write(sql).run(...params) === 0) this.#checkFence(jobId, fence);
  }

  async listChunks(jobId: string): Promise<ChunkRecord[]> {
    const statement = this.#db.cached(
      `SELECT ${CHUNK_STATE_COLUMNS}, result_json FROM chunks WHERE job_id = ? ORDER BY idx`,
    );
    statement.setReturnArrays(true);
    return (statement.all(jobId) as unknown as SQLOutputValue[][]).map(chunkOf);
  }

  async listChunkStates(jobId: string): Promise<ChunkState[]> {
    return this.#chunkStates(jobId);
  }

  #chunkStates(jobId: string): ChunkState[] {
    const statement = this.#db.cached(`SELECT ${CHUNK_STATE_COLUMNS} FROM chunks WHERE job_id = ? ORDER BY idx`);
    statement.setReturnArrays(true);
    return (statement.all(jobId) as unknown as SQLOutputValue[][]).map(chunkStateOf);
  }

  async deleteChunksFrom(jobId: string, index: number, fence?: number): Promise<void> {
    const sql = `DELETE FROM chunks WHERE job_id = ? AND idx >= ?${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`;
    if (this.#db.write(sql).run(jobId, index, ...chunkFenceParams(jobId, fence)) === 0) this.#checkFence(jobId, fence);
  }

  async saveTranscript(jobId: string, transcript: Transcript, fence?: number): Promise<void> {
    const sql = `UPDATE jobs SET transcript_json = ? WHERE id = ?${JOB_FENCE(fence)}`;
    if (this.#db.write(sql).run(JSON.stringify(transcript), jobId, ...fenceParams(fence)) === 0)
      this.#checkFence(jobId, fence);
  }

  async getTranscript(jobId: string): Promise<Transcript | null> {
    const row = this.#db.read('SELECT transcript_json FROM jobs WHERE id = ?').get(jobId) as Row | undefined;
    return row?.transcript_json ? JSON.parse(row.transcript_json as string) : null;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    return (
      this.#db
        .read(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('queued', 'processing') ORDER BY created_at`)
        .all() as Row[]
    ).map(rowToJob);
  }

  async jobLifecycle(id: string): Promise<{ status: JobStatus; endedAt: string | null } | null> {
    const row = this.#db.read(`SELECT status, ${ENDED_AT} AS ended_at FROM jobs WHERE id = ?`).get(id) as
      Row | undefined;
    return row ? { status: row.status as JobStatus, endedAt: (row.ended_at as string | null) ?? null } : null;
  }

  async endedJobsBefore(before: string, limit: number): Promise<string[]> {
    const rows = this.#db
      .read(`SELECT id FROM jobs WHERE status IN ${ENDED_STATUSES} AND ${ENDED_AT} < ? ORDER BY ${ENDED_AT} LIMIT ?`)
      .all(before, limit) as Row[];
    return rows.map((r) => r.id as string);
  }

  async jobIds(): Promise<Set<string>> {
    return new Set((this.#db.read('SELECT id FROM jobs').all() as Row[]).map((r) => r.id as string));
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = this.#db.read('SELECT status, count(*) AS n FROM jobs GROUP BY status').all() as Row[];
    return Object.fromEntries(rows.map((r) => [r.status as string, Number(r.n)]));
  }

  async liveJobsOf(owner: string): Promise<number> {
    const row = this.#db
      .read(`SELECT count(*) AS n FROM jobs WHERE status IN ${LIVE_STATUSES} AND owner = ?`)
      .get(owner) as Row;
    return Number(row.n);
  }

  async deleteJob(id: string): Promise<void> {
    this.#db.write('DELETE FROM jobs WHERE id = ?').run(id);
  }

  async ping(): Promise<void> {
    this.#db.read('SELECT count(*) FROM jobs').get();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
