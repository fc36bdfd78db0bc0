import { isAppError } from '../errors.ts';
import type { Transcript } from '../transcribe/types.ts';
import type { ChunkPatch, JobPatch, JobStore, ListJobsQuery, PollView } from './job-store.ts';
import { PgDb, type PgDbOptions } from './pg-db.ts';
import { pgWebhookRows } from './pg-webhooks.ts';
import { PollCache, visibleTo } from './poll-cache.ts';
import { StoreWithWebhookRows } from './webhook-rows.ts';
import {
  CHUNK_COLUMNS,
  PG_CHUNK_STATE_COLUMNS,
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
} from './store-rows.ts';
import type { ChunkRecord, ChunkState, JobRecord, JobStatus } from './types.ts';

export interface PgJobStoreOptions extends PgDbOptions {
  now?: () => Date;
}

/** The job and its chunk states in one statement, so both are read at one snapshot; the version they were at too. */
const POLL_SQL = `SELECT ${JOB_READ_COLUMNS}, version,
    (SELECT coalesce(json_agg(json_build_array(${PG_CHUNK_STATE_COLUMNS}) ORDER BY idx), '[]')
       FROM chunks WHERE job_id = jobs.id) AS chunk_states
  FROM jobs WHERE id = $1`;

/** A chunk row as an array, the way store-rows reads it. */
type ChunkValues = Array<string | number | null>;

/**
 * Every write to a job's chunks starts here: the job's row locked first (and, for a fenced write, only while its
 * run epoch is the writer's: READ COMMITTED re-checks that on the row as committed after any wait), then the chunk
 * rows. One order for every chunk write and for deleteJob, so none deadlocks with another; a runner taking the job
 * up (takeRun) waits for a write in progress, or the write finds the new epoch and changes nothing. $1 is the job
 * id, $2 the fence (null: unfenced).
 */
const JOB_LOCKED = `WITH job AS (SELECT id FROM jobs WHERE id = $1 AND ($2::bigint IS NULL OR run_epoch = $2) FOR UPDATE)`;

/** `$1, $2, …` for `count` values from `from`. */
const placeholders = (count: number, from = 1) => Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');

/**
 * The job store on PostgreSQL (DATABASE_URL): the same records and behaviour as the SQLite store, shared by every
 * host. Each write is one statement (or one transaction) committed before its promise resolves. A pool of a few
 * connections; statements have a server-side timeout.
 */
export class PgJobStore extends StoreWithWebhookRows implements JobStore {
  readonly kind = 'postgresql';
  readonly #db: PgDb;
  readonly #now: () => Date;
  readonly #pollCache = new PollCache<string>();

  private constructor(db: PgDb, now: () => Date) {
    super(pgWebhookRows(db, now));
    this.#db = db;
    this.#now = now;
  }

  /** Connects and migrates: the store is usable when this resolves. */
  static async open(options: PgJobStoreOptions): Promise<PgJobStore> {
    return new PgJobStore(await PgDb.open(options), options.now ?? (() => new Date()));
  }

  /**
   * A poll asks only for the job's version while it is unchanged (one indexed row, no JSON): the cached view is
   * served again. Any write by any host raises the version, and the view is then read again.
   */
  async pollView(id: string, owner?: string | null): Promise<PollView | null> {
    const [current] = await this.#db.query<{ version: string }>('SELECT version FROM jobs WHERE id = $1', [id]);
    if (!current) {
      this.#pollCache.delete(id);
      return null;
    }
    let view = this.#pollCache.get(id, current.version);
    if (!view) {
      const [row] = await this.#db.query(POLL_SQL, [id]);
      if (!row) return null;
      const states = row.chunk_states as unknown as ChunkValues[];
      view = { job: rowToJob(row), chunks: states.map(chunkStateOf) };
      this.#pollCache.set(id, String(row.version), view);
    }
    return visibleTo(view, owner);
  }

  async insertJob(job: JobRecord, requestFingerprint: string | null = null): Promise<void> {
    const values = jobInsertValues(job, requestFingerprint);
    // Once: sent again after a commit whose answer was lost, it would meet its own row (a unique violation).
    const sql = `INSERT INTO jobs (${JOB_INSERT_COLUMNS}) VALUES (${placeholders(values.length)})`;
    try {
      await this.#db.query(sql, values, undefined, 'once');
    } catch (err) {
      // Unanswered (the connection ended under it): it may have committed. The id is 128 random bits, so a row
      // with it is this insert's; without that look the upload would be refused while its job stays.
      if (!isAppError(err) || err.code !== 'SERVER_BUSY') throw err;
      if (!(await this.jobLifecycle(job.id).catch(() => null))) throw err;
    }
  }

  async getJob(id: string, owner?: string | null): Promise<JobRecord | null> {
    const [row] = await this.#db.query(`SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE id = $1`, [id]);
    if (!row) return null;
    const job = rowToJob(row);
    return owner !== undefined && job.owner !== owner ? null : job;
  }

  async findByIdempotencyKey(
    owner: string | null,
    key: string,
  ): Promise<{ job: JobRecord; requestFingerprint: string | null } | null> {
    const [row] = await this.#db.query(
      `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE coalesce(owner, '') = $1 AND idempotency_key = $2`,
      [owner ?? '', key],
    );
    return row ? { job: rowToJob(row), requestFingerprint: (row.request_fingerprint as string | null) ?? null } : null;
  }

  async listJobs(query: ListJobsQuery): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const params: unknown[] = [query.owner ?? ''];
    const where: string[] = ["coalesce(owner, '') = $1"];
    if (query.status) {
      params.push(query.status);
      where.push(`status = $${params.length}`);
    }
    const after = listAfter(query.cursor);
    if (after) {
      params.push(after[0], after[1]);
      where.push(`(created_at, id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(query.limit + 1);
    const rows = await this.#db.query(
      `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE ${where.join(' AND ')}
         ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return listPage(rows, query.limit);
  }

  async takeRun(id: string): Promise<number | null> {
    // Sent again after a lost answer it raises the epoch twice: the run still holds the newest one, which is all
    // taking the job up promises (an epoch in between was nobody's).
    const [row] = await this.#db.query<{ run_epoch: string }>(
      `UPDATE jobs SET run_epoch = run_epoch + 1 WHERE id = $1 AND status IN ${LIVE_STATUSES} RETURNING run_epoch`,
      [id],
    );
    return row ? Number(row.run_epoch) : null;
  }

  /** A fenced write that changed nothing: was it refused? */
  async #checkFence(jobId: string, fence: number | undefined): Promise<void> {
    if (fence === undefined) return;
    checkFence(jobId, fence, (await this.#db.query('SELECT run_epoch FROM jobs WHERE id = $1', [jobId]))[0]);
  }

  async updateJob(
    id: string,
    patch: JobPatch,
    options: { whileLive?: boolean; fence?: number } = {},
  ): Promise<boolean> {
    const set = patchColumns(patch, JOB_COLUMNS);
    const sets = [...set.map(({ column }, i) => `${column} = $${i + 1}`), `updated_at = $${set.length + 1}`];
    const live = options.whileLive ? ` AND status IN ${LIVE_STATUSES}` : '';
    const { fence } = options;
    const params = [...set.map(({ value }) => value), this.#now().toISOString(), id, fence ?? null];
    const n = params.length;
    const sql = `UPDATE jobs SET ${sets.join(', ')} WHERE id = $${n - 1}${live} AND ($${n}::bigint IS NULL OR run_epoch = $${n})`;
    // Absolute values, sent again as they are; but a write only while live that had committed would find the job
    // ended by itself and answer false (ended by someone else): that one is sent once.
    const changed = (await this.#db.count(sql, params, options.whileLive ? 'once' : 'idempotent')) > 0;
    if (!changed) await this.#checkFence(id, fence);
    return changed;
  }

  async raisePercent(id: string, percent: number, fence?: number): Promise<void> {
    // Only when it rises: an unchanged row is not written, so polls keep their cached view.
    const changed = await this.#db.count(
      'UPDATE jobs SET percent = $1 WHERE id = $2 AND percent < $1 AND ($3::bigint IS NULL OR run_epoch = $3)',
      [percent, id, fence ?? null],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(id, fence);
  }

  async upsertChunk(
    jobId: string,
    index: number,
    startS: number,
    durationS: number,
    fence?: number,
  ): Promise<ChunkRecord> {
    const changed = await this.#db.count(
      `${JOB_LOCKED}
       INSERT INTO chunks (job_id, idx, start_s, duration_s, status) SELECT id, $3::integer, $4::double precision, $5::double precision, 'pending' FROM job
       ON CONFLICT (job_id, idx) DO UPDATE SET start_s = excluded.start_s, duration_s = excluded.duration_s
       WHERE chunks.status <> 'done'`,
      [jobId, fence ?? null, index, startS, durationS],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(jobId, fence);
    return (await this.getChunk(jobId, index)) as ChunkRecord;
  }

  async getChunk(jobId: string, index: number): Promise<ChunkRecord | null> {
    const [row] = await this.#chunkRows('WHERE job_id = $1 AND idx = $2', [jobId, index], true);
    return row ? chunkOf(row) : null;
  }

  /** Chunk rows as arrays in PG_CHUNK_STATE_COLUMNS order (and result_json after them), as store-rows reads them. */
  async #chunkRows(where: string, params: unknown[], withResult: boolean): Promise<ChunkValues[]> {
    const columns = withResult ? `${PG_CHUNK_STATE_COLUMNS}, result_json` : PG_CHUNK_STATE_COLUMNS;
    return this.#db.arrays<ChunkValues>(`SELECT ${columns} FROM chunks ${where} ORDER BY idx`, params);
  }

  async resetChunksInFlight(jobId: string, fence?: number): Promise<void> {
    const changed = await this.#db.count(
      `${JOB_LOCKED}
       UPDATE chunks SET status = 'pending', next_try_at = NULL
         WHERE job_id = (SELECT id FROM job) AND status IN ('sending', 'retrying')`,
      [jobId, fence ?? null],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(jobId, fence);
  }

  async updateChunk(jobId: string, index: number, patch: ChunkPatch, fence?: number): Promise<void> {
    const set = patchColumns(patch, CHUNK_COLUMNS);
    if (set.length === 0) return;
    const sets = set.map(({ column }, i) => `${column} = $${i + 4}`).join(', ');
    const changed = await this.#db.count(
      `${JOB_LOCKED} UPDATE chunks SET ${sets} WHERE job_id = (SELECT id FROM job) AND idx = $3`,
      [jobId, fence ?? null, index, ...set.map(({ value }) => value)],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(jobId, fence);
  }

  async listChunks(jobId: string): Promise<ChunkRecord[]> {
    return (await this.#chunkRows('WHERE job_id = $1', [jobId], true)).map(chunkOf);
  }

  async listChunkStates(jobId: string): Promise<ChunkState[]> {
    return (await this.#chunkRows('WHERE job_id = $1', [jobId], false)).map(chunkStateOf);
  }

  async deleteChunksFrom(jobId: string, index: number, fence?: number): Promise<void> {
    // Deleting chunks fires no trigger: the job's version is raised here.
    const changed = await this.#db.count(
      `${JOB_LOCKED}, gone AS (DELETE FROM chunks WHERE job_id = (SELECT id FROM job) AND idx >= $3 RETURNING 1)
       UPDATE jobs SET version = version + 1 WHERE id = (SELECT id FROM job) AND EXISTS (SELECT 1 FROM gone)`,
      [jobId, fence ?? null, index],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(jobId, fence);
  }

  async saveTranscript(jobId: string, transcript: Transcript, fence?: number): Promise<void> {
    const changed = await this.#db.count(
      'UPDATE jobs SET transcript_json = $1 WHERE id = $2 AND ($3::bigint IS NULL OR run_epoch = $3)',
      [JSON.stringify(transcript), jobId, fence ?? null],
      'idempotent',
    );
    if (changed === 0) await this.#checkFence(jobId, fence);
  }

  async getTranscript(jobId: string): Promise<Transcript | null> {
    const [row] = await this.#db.query<{ transcript_json: string | null }>(
      'SELECT transcript_json FROM jobs WHERE id = $1',
      [jobId],
    );
    return row?.transcript_json ? (JSON.parse(row.transcript_json) as Transcript) : null;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    const rows = await this.#db.query(
      `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('queued', 'processing') ORDER BY created_at`,
    );
    return rows.map(rowToJob);
  }

  async jobLifecycle(id: string): Promise<{ status: JobStatus; endedAt: string | null } | null> {
    const [row] = await this.#db.query<{ status: JobStatus; ended_at: string | null }>(
      `SELECT status, ${ENDED_AT} AS ended_at FROM jobs WHERE id = $1`,
      [id],
    );
    return row ? { status: row.status, endedAt: row.ended_at ?? null } : null;
  }

  async endedJobsBefore(before: string, limit: number): Promise<string[]> {
    const rows = await this.#db.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status IN ${ENDED_STATUSES} AND ${ENDED_AT} < $1 ORDER BY ${ENDED_AT} LIMIT $2`,
      [before, limit],
    );
    return rows.map((r) => r.id);
  }

  async jobIds(): Promise<Set<string>> {
    return new Set((await this.#db.query<{ id: string }>('SELECT id FROM jobs')).map((r) => r.id));
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.#db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM jobs GROUP BY status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  async liveJobsOf(owner: string): Promise<number> {
    const rows = await this.#db.query<{ n: string }>(
      `SELECT count(*) AS n FROM jobs WHERE status IN ${LIVE_STATUSES} AND owner = $1`,
      [owner],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async deleteJob(id: string): Promise<void> {
    // The job's row first, then its chunks: the order every chunk write locks them in (JOB_LOCKED), so a delete
    // and a runner's write of the same job cannot deadlock.
    await this.#db.transaction(async (client) => {
      await this.#db.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [id], client);
      await this.#db.query('DELETE FROM chunks WHERE job_id = $1', [id], client);
      await this.#db.query('DELETE FROM jobs WHERE id = $1', [id], client);
    }, 'idempotent');
    this.#pollCache.delete(id);
  }

  ping(): Promise<void> {
    return this.#db.ping();
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
