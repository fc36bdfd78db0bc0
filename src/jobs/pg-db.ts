import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
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
 * The server ending a connection as it goes down (admin_shutdown, crash_shutdown: a FATAL the statement under way
 * gets, whether or not it had committed). A statement that met its connection's end otherwise gets the driver's
 * error, which has no SQLSTATE: that the connection ended under it is what tells it apart.
 */
const SERVER_GOING_DOWN = new Set(['57P01', '57P02']);

/** How a statement may be sent again when its connection ends under it (a server restart or crash). */
export type Resend =
  /** Running it twice does what running it once does: sent again on a new connection within the restart wait. */
  | 'idempotent'
  /** Its second run could do or say something else (an insert, a conditional end): never sent again. */
  | 'once';

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

  /** Reads are sent again when their connection ends under them; a write says whether it may be (`Resend`). */
  async query<R extends QueryResultRow = Row>(
    sql: string,
    params: unknown[] = [],
    on?: PoolClient,
    resend: Resend = 'idempotent',
  ): Promise<R[]> {
    // A statement of a transaction: the transaction as a whole is what may be sent again (`transaction`).
    if (on) return (await on.query<R>(sql, params)).rows;
    return (await this.#run((client) => client.query<R>(sql, params), resend)).rows;
  }

  /** How many rows the statement changed. */
  async count(sql: string, params: unknown[], resend: Resend): Promise<number> {
    return (await this.#run((client) => client.query(sql, params), resend)).rowCount ?? 0;
  }

  /** Rows as arrays of their columns in the order selected. */
  async arrays<R extends unknown[]>(sql: string, params: unknown[]): Promise<R[]> {
    const rows = this.#run((client) => client.query<R>({ text: sql, values: params, rowMode: 'array' }), 'idempotent');
    return (await rows).rows;
  }

  /**
   * One statement on a connection of the pool (`#connect`). When the connection ends under it (the server restarts
   * or crashes mid-statement) an idempotent one is sent again on a new connection; the restart wait is shared by
   * every try, measured from the first.
   */
  async #run<T>(send: (client: PoolClient) => Promise<T>, resend: Resend): Promise<T> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect(started);
      const lost = watchEnd(client);
      try {
        const result = await send(client);
        client.release();
        return result;
      } catch (err) {
        // As pg's pool.query does: a client whose statement failed is not reused (its connection may be broken).
        client.release(err instanceof Error ? err : true);
        if (!this.#sendAgain(err, lost(), resend, started)) throw typed(err, lost());
        this.#logger.warn({ attempt, code: codeOf(err) }, 'job store connection ended mid-statement; sending it again');
      } finally {
        lost.stop();
      }
    }
  }

  #sendAgain(err: unknown, ended: boolean, resend: Resend, started: number): boolean {
    const gone = ended || SERVER_GOING_DOWN.has(codeOf(err) ?? '');
    return gone && resend === 'idempotent' && !this.#pool.ended && performance.now() - started < this.#restartWaitMs;
  }

  /** A connection of the pool, waiting out a server restart until restartWaitMs after `started` (measured, not timed). */
  async #connect(started = performance.now()): Promise<PoolClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#pool.connect();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const pauseMs = RESTART_PAUSES_MS[Math.min(attempt, RESTART_PAUSES_MS.length - 1)] as number;
        const restarting = typeof code === 'string' && SERVER_RESTARTING.has(code);
        if (!restarting || this.#pool.ended || performance.now() - started + pauseMs > this.#restartWaitMs) {
          throw typed(err, restarting);
        }
        // Debug only: every statement of every job waits alike meanwhile, and /health/ready says the store is down.
        this.#logger.debug({ code, attempt, pauseMs }, 'job store refused a connection; trying again');
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  /**
   * Statements that must commit together, on one connection. An idempotent transaction is run again when its
   * connection ends under it (its COMMIT's answer lost, say), as one statement would be.
   */
  async transaction(work: (client: PoolClient) => Promise<void>, resend: Resend): Promise<void> {
    await this.#run(async (client) => {
      try {
        await client.query('BEGIN');
        await work(client);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }, resend);
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

const codeOf = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/**
 * Whether `client`'s connection has failed or ended since this was called (read it after a statement failed);
 * stop() unwatches. It also keeps the process alive: pg-pool listens for a client's `error` only while the client
 * is idle, and a connection that ends under a statement emits one, which without a listener would be thrown.
 */
function watchEnd(client: PoolClient): (() => boolean) & { stop(): void } {
  let ended = false;
  const onEnd = () => {
    ended = true;
  };
  client.on('error', onEnd);
  client.once('end', onEnd);
  return Object.assign(() => ended, {
    stop() {
      client.removeListener('error', onEnd);
      client.removeListener('end', onEnd);
    },
  });
}

/**
 * The store's errors as the service handles them: a full volume (which the jobs wait out, src/resources/storage-guard.ts)
 * and a server that did not come back within the restart wait, or a connection that ended under a statement not sent
 * again (503 SERVER_BUSY, resource `job_store`: a job it fails says so). The driver's error is the cause; its
 * message, which may name the server's address, is not repeated.
 */
function typed(err: unknown, unavailable = false): unknown {
  const code = codeOf(err);
  if (code === DISK_FULL) return new DiskFullError('job store', err);
  if (!unavailable && !SERVER_GOING_DOWN.has(code ?? '')) return err;
  return new AppError('SERVER_BUSY', `The job store did not answer${code ? ` (${code})` : ''}; retry later.`, {
    retryable: true,
    details: { resource: 'job_store' },
    cause: err,
  });
}
