import { Pool, type PoolClient, type QueryResult, type QueryResultRow } from 'pg';
import type { Logger } from 'pino';
import { DiskFullError } from '../resources/disk-full.ts';
import { migratePostgres } from './pg-migrations.ts';
import type { Row } from './store-rows.ts';

export interface PgDbOptions {
  /** DATABASE_URL. */
  url: string;
  logger: Logger;
  /** Connections this process opens at most: the database's max_connections is shared by every host. @default 10 */
  poolMax?: number;
  /** A statement running longer is cancelled by the server (a lock held by a stuck host must not hang a poll). @default 15000 */
  statementTimeoutMs?: number;
}

/** SQLSTATE disk_full: the database's volume is full, a state the jobs wait out as with SQLite's. */
const DISK_FULL = '53100';

/**
 * The job store's PostgreSQL database, connected and migrated: how the store's queries reach it. A pool of a few
 * connections; statements have a server-side timeout; a full disk is typed here once.
 */
export class PgDb {
  readonly #pool: Pool;

  private constructor(pool: Pool) {
    this.#pool = pool;
  }

  /** Connects and migrates: the database is usable when this resolves. */
  static async open(options: PgDbOptions): Promise<PgDb> {
    const pool = new Pool({
      connectionString: options.url,
      max: options.poolMax ?? 10,
      statement_timeout: options.statementTimeoutMs ?? 15_000,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'chunkscribe',
    });
    // An idle connection the server dropped emits here; without a listener it would end the process. The pool
    // replaces it at the next query. The message names no credentials (pg never puts the URL in one).
    pool.on('error', (err) => options.logger.warn({ err: err.message }, 'job store connection lost'));
    try {
      await migratePostgres(pool);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PgDb(pool);
  }

  async query<R extends QueryResultRow = Row>(sql: string, params: unknown[] = [], on?: PoolClient): Promise<R[]> {
    return (await this.#run<R>(sql, params, on)).rows;
  }

  /** How many rows the statement changed. */
  async count(sql: string, params: unknown[]): Promise<number> {
    return (await this.#run(sql, params)).rowCount ?? 0;
  }

  /** Rows as arrays of their columns in the order selected. */
  async arrays<R extends unknown[]>(sql: string, params: unknown[]): Promise<R[]> {
    return (await this.#pool.query<R>({ text: sql, values: params, rowMode: 'array' })).rows;
  }

  async #run<R extends QueryResultRow = Row>(sql: string, params: unknown[], on?: PoolClient): Promise<QueryResult<R>> {
    try {
      return await (on ?? this.#pool).query<R>(sql, params);
    } catch (err) {
      // A full volume is a state the jobs wait out (src/resources/storage-guard.ts), typed here once.
      if ((err as { code?: unknown }).code === DISK_FULL) throw new DiskFullError('job store', err);
      throw err;
    }
  }

  /** Statements that must commit together, on one connection. */
  async transaction(work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#pool.query('SELECT 1 FROM jobs LIMIT 1');
    } catch (err) {
      // Only the driver's code: a message may name the server's address, which /health must not show.
      const code = (err as { code?: unknown }).code;
      throw new Error(`did not answer${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (!this.#pool.ended) await this.#pool.end();
  }
}
