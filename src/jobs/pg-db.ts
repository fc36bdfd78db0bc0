import { Pool, type PoolClient, type QueryResultRow } from 'pg';
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
  /** How long a statement waits for a restarting server (refused connections) before it fails. @default 15000 */
  restartWaitMs?: number;
}

/** SQLSTATE disk_full: the database's volume is full, a state the jobs wait out as with SQLite's. */
const DISK_FULL = '53100';
/**
 * A connection refused or reset while it was being made, or the server saying it is starting up or shutting down
 * (cannot_connect_now): the server is restarting. No statement was sent on it, so trying again cannot run one twice.
 */
const SERVER_RESTARTING = new Set(['ECONNREFUSED', 'ECONNRESET', '57P03']);
/**
 * How long a statement waits for a restarting server before its error is thrown: as long as a statement may run
 * (statement_timeout), so a restart of a few seconds delays the jobs' writes instead of failing their jobs.
 */
const RESTART_WAIT_MS = 15_000;
const RESTART_PAUSES_MS = [100, 250, 500, 1_000];

/**
 * The job store's PostgreSQL database, connected and migrated: how the store's queries reach it. A pool of a few
 * connections; statements have a server-side timeout; a full disk is typed here once.
 */
export class PgDb {
  readonly #pool: Pool;
  readonly #logger: Logger;
  readonly #restartWaitMs: number;

  private constructor(pool: Pool, logger: Logger, restartWaitMs: number) {
    this.#pool = pool;
    this.#logger = logger;
    this.#restartWaitMs = restartWaitMs;
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
    return new PgDb(pool, options.logger, options.restartWaitMs ?? RESTART_WAIT_MS);
  }

  async query<R extends QueryResultRow = Row>(sql: string, params: unknown[] = [], on?: PoolClient): Promise<R[]> {
    return (await this.#run((client) => client.query<R>(sql, params), on)).rows;
  }

  /** How many rows the statement changed. */
  async count(sql: string, params: unknown[]): Promise<number> {
    return (await this.#run((client) => client.query(sql, params))).rowCount ?? 0;
  }

  /** Rows as arrays of their columns in the order selected. */
  async arrays<R extends unknown[]>(sql: string, params: unknown[]): Promise<R[]> {
    return (await this.#run((client) => client.query<R>({ text: sql, values: params, rowMode: 'array' }))).rows;
  }

  /** One statement, on `on` or on a connection of the pool (`#connect`). */
  async #run<T>(send: (client: PoolClient) => Promise<T>, on?: PoolClient): Promise<T> {
    try {
      if (on) return await send(on);
      const client = await this.#connect();
      try {
        const result = await send(client);
        client.release();
        return result;
      } catch (err) {
        // As pg's pool.query does: a client whose statement failed is not reused (its connection may be broken).
        client.release(err instanceof Error ? err : true);
        throw err;
      }
    } catch (err) {
      // A full volume is a state the jobs wait out (src/resources/storage-guard.ts), typed here once.
      if ((err as { code?: unknown }).code === DISK_FULL) throw new DiskFullError('job store', err);
      throw err;
    }
  }

  /** A connection of the pool, waiting out a server restart for up to restartWaitMs (measured, not timed). */
  async #connect(): Promise<PoolClient> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#pool.connect();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const pauseMs = RESTART_PAUSES_MS[Math.min(attempt, RESTART_PAUSES_MS.length - 1)] as number;
        const restarting = typeof code === 'string' && SERVER_RESTARTING.has(code);
        if (!restarting || this.#pool.ended || performance.now() - started + pauseMs > this.#restartWaitMs) throw err;
        // Debug only: every statement of every job waits alike meanwhile, and /health/ready says the store is down.
        this.#logger.debug({ code, attempt, pauseMs }, 'job store refused a connection; trying again');
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  /** Statements that must commit together, on one connection. */
  async transaction(work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.#connect();
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
