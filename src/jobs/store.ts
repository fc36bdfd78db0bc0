import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from 'node:sqlite';
import { DiskFullError, isDiskFull, isMalformedStore } from '../resources/disk-full.ts';
import type { Transcript } from '../transcribe/types.ts';
import type { JobStore, ListJobsQuery, PollView, WebhookClaim, WebhookLease } from './job-store.ts';
import { migrate } from './migrations.ts';
import { PollCache, visibleTo } from './poll-cache.ts';
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
  toSql,
  unclaimed,
  type ChunkPatch,
  type JobPatch,
  type Row,
} from './store-rows.ts';
import type { ChunkRecord, ChunkState, JobRecord, JobStatus, WebhookState } from './types.ts';

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
 * The store file is damaged or not a database: the service cannot start on it, and nothing it could do on its own
 * (deleting the file) would be safe. The message names the file and what the operator can do.
 */
export class StoreUnreadableError extends Error {
  readonly file: string;
  constructor(file: string, detail: string, cause?: unknown) {
    super(
      `The job store ${file} is damaged (${detail}). Stop every process using it, then restore it from a backup, or ` +
        `recover what is readable with \`sqlite3 ${file} .recover | sqlite3 ${file}.recovered\` and move that in its place, ` +
        `or move the file (with its -wal and -shm files) aside to start with an empty store.`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'StoreUnreadableError';
    this.file = file;
  }
}

/**
 * The job store on one SQLite file (the default): synchronous writes inside, so every state change is on disk
 * before its promise resolves and calls apply in the order they were made. WAL keeps polling reads from blocking
 * the runner's writes.
 */
export class SqliteJobStore implements JobStore {
  readonly kind = 'sqlite';
  readonly #db: DatabaseSync;
  readonly #now: () => Date;
  readonly #statements = new Map<string, StatementSync>();
  #writes = 0;
  readonly #shared: boolean;
  readonly #pollCache = new PollCache<string>();

  constructor(options: JobStoreOptions) {
    if (options.file !== ':memory:') mkdirSync(path.dirname(options.file), { recursive: true });
    this.#now = options.now ?? (() => new Date());
    this.#shared = options.shared ?? false;
    this.#db = new DatabaseSync(options.file);
    try {
      // busy_timeout first: processes sharing the file (scale-out) may open it at the same moment.
      this.#db.exec(
        'PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;',
      );
      // A damaged page otherwise surfaces later, from whichever query reads it first (the start's cleanup pass).
      const check = (this.#db.prepare('PRAGMA quick_check(3)').all() as Array<{ quick_check: string }>).map(
        (r) => r.quick_check,
      );
      if (check.join() !== 'ok') throw new StoreUnreadableError(options.file, check.join('; ').replaceAll('\n', ' '));
      migrate(this.#db);
    } catch (err) {
      this.#db.close();
      if (isMalformedStore(err)) throw new StoreUnreadableError(options.file, (err as Error).message, err);
      throw err;
    }
  }

  /**
   * Every write goes through here: it counts the write, which is how the poll cache knows its copy is stale
   * (writes by other connections move `PRAGMA data_version` instead).
   */
  #write(sql: string): { run(...params: SQLInputValue[]): number; get(...params: SQLInputValue[]): Row | undefined } {
    this.#writes += 1;
    const statement = this.#db.prepare(sql);
    // A full volume is a state the jobs wait out (src/resources/storage-guard.ts), and a client retries: typed
    // here, once, so no caller has to know SQLite's error codes.
    const typed = <T>(write: () => T): T => {
      try {
        return write();
      } catch (err) {
        throw isDiskFull(err) ? new DiskFullError('job store', err) : err;
      }
    };
    return {
      run: (...params) => typed(() => Number(statement.run(...params).changes)),
      // A write with RETURNING: the row as written.
      get: (...params) => typed(() => statement.get(...params) as Row | undefined),
    };
  }

  /** What the poll cache's entries were read at: this connection's write count, and SQLite's data version if shared. */
  #version(): string {
    if (!this.#shared) return String(this.#writes);
    const row = this.#cached('PRAGMA data_version').get() as { data_version: number };
    return `${this.#writes}:${row.data_version}`;
  }

  /**
   * Served again without reading the rows while nothing was written anywhere: clients poll many times a second,
   * and reading and parsing the rows was most of a poll's cost.
   */
  async pollView(id: string, owner?: string | null): Promise<PollView | null> {
    const version = this.#version();
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

  /** The hot reads (polling) reuse their compiled statement instead of preparing it per call. */
  #cached(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async insertJob(job: JobRecord, requestFingerprint: string | null = null): Promise<void> {
    const values = jobInsertValues(job, requestFingerprint);
    this.#write(`INSERT INTO jobs (${JOB_INSERT_COLUMNS}) VALUES (${values.map(() => '?').join(', ')})`).run(...values);
  }

  async getJob(id: string, owner?: string | null): Promise<JobRecord | null> {
    return this.#getJob(id, owner);
  }

  #getJob(id: string, owner?: string | null): JobRecord | null {
    const row = this.#cached(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE id = ?`).get(id) as Row | undefined;
    if (!row) return null;
    const job = rowToJob(row);
    return owner !== undefined && job.owner !== owner ? null : job;
  }

  async findByIdempotencyKey(
    owner: string | null,
    key: string,
  ): Promise<{ job: JobRecord; requestFingerprint: string | null } | null> {
    const row = this.#db
      .prepare(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE ifnull(owner, '') = ? AND idempotency_key = ?`)
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
      .prepare(
        `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ?`,
      )
      .all(...params, query.limit + 1) as Row[];
    return listPage(rows, query.limit);
  }

  async takeRun(id: string): Promise<number | null> {
    const row = this.#write(
      `UPDATE jobs SET run_epoch = run_epoch + 1 WHERE id = ? AND status IN ${LIVE_STATUSES} RETURNING run_epoch`,
    ).get(id);
    return row ? Number(row.run_epoch) : null;
  }

  /** A fenced write that changed nothing: was it refused? (SQLite's write lock made the write's own check exact.) */
  #checkFence(jobId: string, fence: number | undefined): void {
    if (fence === undefined) return;
    checkFence(jobId, fence, this.#db.prepare('SELECT run_epoch FROM jobs WHERE id = ?').get(jobId) as Row | undefined);
  }

  async updateJob(
    id: string,
    patch: JobPatch,
    options: { whileLive?: boolean; fence?: number } = {},
  ): Promise<boolean> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as Array<[keyof JobPatch, unknown]>;
    const sets = entries.map(([k]) => `${JOB_COLUMNS[k]} = ?`);
    const live = options.whileLive ? ` AND status IN ${LIVE_STATUSES}` : '';
    const { fence } = options;
    const sql = `UPDATE jobs SET ${[...sets, 'updated_at = ?'].join(', ')} WHERE id = ?${live}${JOB_FENCE(fence)}`;
    const params = [...entries.map(([, v]) => toSql(v)), this.#now().toISOString(), id, ...fenceParams(fence)];
    const changed = this.#write(sql).run(...params) > 0;
    if (!changed) this.#checkFence(id, fence);
    return changed;
  }

  async raisePercent(id: string, percent: number, fence?: number): Promise<void> {
    const sql = `UPDATE jobs SET percent = max(percent, ?) WHERE id = ?${JOB_FENCE(fence)}`;
    if (this.#write(sql).run(percent, id, ...fenceParams(fence)) === 0) this.#checkFence(id, fence);
  }

  async upsertChunk(
    jobId: string,
    index: number,
    startS: number,
    durationS: number,
    fence?: number,
  ): Promise<ChunkRecord> {
    // INSERT ... SELECT so that the fence can apply to the insert too (an upsert's SELECT needs its WHERE).
    const changes = this.#write(
      `INSERT INTO chunks (job_id, idx, start_s, duration_s, status) SELECT ?, ?, ?, ?, 'pending'
       WHERE ${fence === undefined ? 'true' : CHUNK_FENCE}
       ON CONFLICT (job_id, idx) DO UPDATE SET start_s = excluded.start_s, duration_s = excluded.duration_s
       WHERE chunks.status != 'done'`,
    ).run(jobId, index, startS, durationS, ...chunkFenceParams(jobId, fence));
    if (changes === 0) this.#checkFence(jobId, fence);
    return this.#getChunk(jobId, index) as ChunkRecord;
  }

  async getChunk(jobId: string, index: number): Promise<ChunkRecord | null> {
    return this.#getChunk(jobId, index);
  }

  #getChunk(jobId: string, index: number): ChunkRecord | null {
    const statement = this.#cached(
      `SELECT ${CHUNK_STATE_COLUMNS}, result_json FROM chunks WHERE job_id = ? AND idx = ?`,
    );
    statement.setReturnArrays(true);
    const values = statement.get(jobId, index) as unknown as SQLOutputValue[] | undefined;
    return values ? chunkOf(values) : null;
  }

  async resetChunksInFlight(jobId: string, fence?: number): Promise<void> {
    const changes = this.#write(
      `UPDATE chunks SET status = 'pending', next_try_at = NULL
         WHERE job_id = ? AND status IN ('sending', 'retrying')${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`,
    ).run(jobId, ...chunkFenceParams(jobId, fence));
    if (changes === 0) this.#checkFence(jobId, fence);
  }

  async updateChunk(jobId: string, index: number, patch: ChunkPatch, fence?: number): Promise<void> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as Array<[keyof ChunkPatch, unknown]>;
    if (entries.length === 0) return;
    const sets = entries.map(([k]) => `${CHUNK_COLUMNS[k]} = ?`).join(', ');
    const sql = `UPDATE chunks SET ${sets} WHERE job_id = ? AND idx = ?${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`;
    const params = [...entries.map(([, v]) => toSql(v)), jobId, index, ...chunkFenceParams(jobId, fence)];
    if (this.#write(sql).run(...params) === 0) this.#checkFence(jobId, fence);
  }

  async listChunks(jobId: string): Promise<ChunkRecord[]> {
    const statement = this.#cached(
      `SELECT ${CHUNK_STATE_COLUMNS}, result_json FROM chunks WHERE job_id = ? ORDER BY idx`,
    );
    statement.setReturnArrays(true);
    return (statement.all(jobId) as unknown as SQLOutputValue[][]).map(chunkOf);
  }

  async listChunkStates(jobId: string): Promise<ChunkState[]> {
    return this.#chunkStates(jobId);
  }

  #chunkStates(jobId: string): ChunkState[] {
    const statement = this.#cached(`SELECT ${CHUNK_STATE_COLUMNS} FROM chunks WHERE job_id = ? ORDER BY idx`);
    statement.setReturnArrays(true);
    return (statement.all(jobId) as unknown as SQLOutputValue[][]).map(chunkStateOf);
  }

  async deleteChunksFrom(jobId: string, index: number, fence?: number): Promise<void> {
    const sql = `DELETE FROM chunks WHERE job_id = ? AND idx >= ?${fence === undefined ? '' : ` AND ${CHUNK_FENCE}`}`;
    if (this.#write(sql).run(jobId, index, ...chunkFenceParams(jobId, fence)) === 0) this.#checkFence(jobId, fence);
  }

  async saveTranscript(jobId: string, transcript: Transcript, fence?: number): Promise<void> {
    const sql = `UPDATE jobs SET transcript_json = ? WHERE id = ?${JOB_FENCE(fence)}`;
    if (this.#write(sql).run(JSON.stringify(transcript), jobId, ...fenceParams(fence)) === 0)
      this.#checkFence(jobId, fence);
  }

  async getTranscript(jobId: string): Promise<Transcript | null> {
    const row = this.#db.prepare('SELECT transcript_json FROM jobs WHERE id = ?').get(jobId) as Row | undefined;
    return row?.transcript_json ? JSON.parse(row.transcript_json as string) : null;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    return (
      this.#db
        .prepare(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('queued', 'processing') ORDER BY created_at`)
        .all() as Row[]
    ).map(rowToJob);
  }

  async jobLifecycle(id: string): Promise<{ status: JobStatus; endedAt: string | null } | null> {
    const row = this.#db.prepare(`SELECT status, ${ENDED_AT} AS ended_at FROM jobs WHERE id = ?`).get(id) as
      Row | undefined;
    return row ? { status: row.status as JobStatus, endedAt: (row.ended_at as string | null) ?? null } : null;
  }

  async endedJobsBefore(before: string, limit: number): Promise<string[]> {
    const rows = this.#db
      .prepare(`SELECT id FROM jobs WHERE status IN ${ENDED_STATUSES} AND ${ENDED_AT} < ? ORDER BY ${ENDED_AT} LIMIT ?`)
      .all(before, limit) as Row[];
    return rows.map((r) => r.id as string);
  }

  async webhookBacklog(): Promise<JobRecord[]> {
    return (
      this.#db
        .prepare(
          `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('completed', 'failed') AND json_extract(request_json, '$.callback_url') IS NOT NULL
             AND (webhook_json IS NULL OR json_extract(webhook_json, '$.status') = 'pending') ORDER BY completed_at`,
        )
        .all() as Row[]
    ).map(rowToJob);
  }

  async oweWebhook(jobId: string, state: WebhookState): Promise<boolean> {
    return (
      this.#write('UPDATE jobs SET webhook_json = ?, updated_at = ? WHERE id = ? AND webhook_json IS NULL').run(
        JSON.stringify(state),
        this.#now().toISOString(),
        jobId,
      ) > 0
    );
  }

  async claimWebhook(jobId: string, lease: WebhookLease): Promise<WebhookClaim> {
    // One statement: SQLite's write lock makes the check and the claim one step for every process on the file.
    const row = this.#write(
      `UPDATE jobs SET webhook_holder = ?, webhook_lease_until = ?
         WHERE id = ? AND json_extract(webhook_json, '$.status') = 'pending'
           AND (webhook_lease_until IS NULL OR webhook_lease_until <= ?)
         RETURNING ${JOB_READ_COLUMNS}`,
    ).get(lease.holder, lease.until, jobId, lease.now);
    if (row) return { job: rowToJob(row), held: true, heldUntil: null };
    const other = this.#db
      .prepare(`SELECT ${JOB_READ_COLUMNS}, webhook_lease_until FROM jobs WHERE id = ?`)
      .get(jobId) as Row | undefined;
    return unclaimed(other);
  }

  async renewWebhook(jobId: string, holder: string, until: string): Promise<boolean> {
    return (
      this.#write('UPDATE jobs SET webhook_lease_until = ? WHERE id = ? AND webhook_holder = ?').run(
        until,
        jobId,
        holder,
      ) > 0
    );
  }

  async settleWebhook(jobId: string, holder: string, state?: WebhookState): Promise<boolean> {
    const sets = ['webhook_holder = NULL', 'webhook_lease_until = NULL'];
    const params: SQLInputValue[] = [];
    if (state) {
      sets.push('webhook_json = ?', 'updated_at = ?');
      params.push(JSON.stringify(state), this.#now().toISOString());
    }
    return (
      this.#write(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND webhook_holder = ?`).run(
        ...params,
        jobId,
        holder,
      ) > 0
    );
  }

  async releaseWebhookLeases(holder: string): Promise<number> {
    return this.#write(
      'UPDATE jobs SET webhook_holder = NULL, webhook_lease_until = NULL WHERE webhook_holder IS NOT NULL AND webhook_holder != ?',
    ).run(holder);
  }

  async jobIds(): Promise<Set<string>> {
    return new Set((this.#db.prepare('SELECT id FROM jobs').all() as Row[]).map((r) => r.id as string));
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = this.#db.prepare('SELECT status, count(*) AS n FROM jobs GROUP BY status').all() as Row[];
    return Object.fromEntries(rows.map((r) => [r.status as string, Number(r.n)]));
  }

  async deleteJob(id: string): Promise<void> {
    this.#write('DELETE FROM jobs WHERE id = ?').run(id);
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT count(*) FROM jobs').get();
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
