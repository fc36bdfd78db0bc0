import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { DiskFullError, isDiskFull, isMalformedStore } from '../resources/disk-full.ts';
import { migrate } from './migrations.ts';
import type { Row } from './store-rows.ts';

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

/** A prepared write: `run` answers how many rows it changed, `get` the row a RETURNING write wrote. */
export interface SqliteWrite {
  run(...params: SQLInputValue[]): number;
  get(...params: SQLInputValue[]): Row | undefined;
}

/**
 * The job store's SQLite file, opened, checked and migrated: how the store's queries reach it. Every write goes
 * through `write`, which counts it (how the poll cache knows its copy is stale) and types a full disk once.
 */
export class SqliteDb {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #shared: boolean;
  #writes = 0;

  /**
   * `shared`: other processes write to the file too (scale-out), so `version` reads SQLite's data version as
   * well; alone, every write passes through here and counting them is enough.
   */
  constructor(file: string, shared: boolean) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    this.#shared = shared;
    this.#db = new DatabaseSync(file);
    try {
      // busy_timeout first: processes sharing the file (scale-out) may open it at the same moment.
      this.#db.exec(
        'PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;',
      );
      // A damaged page otherwise surfaces later, from whichever query reads it first (the start's cleanup pass).
      const check = (this.#db.prepare('PRAGMA quick_check(3)').all() as Array<{ quick_check: string }>).map(
        (r) => r.quick_check,
      );
      if (check.join() !== 'ok') throw new StoreUnreadableError(file, check.join('; ').replaceAll('\n', ' '));
      migrate(this.#db);
    } catch (err) {
      this.#db.close();
      if (isMalformedStore(err)) throw new StoreUnreadableError(file, (err as Error).message, err);
      throw err;
    }
  }

  write(sql: string): SqliteWrite {
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
      get: (...params) => typed(() => statement.get(...params) as Row | undefined),
    };
  }

  /** A read prepared for this call. */
  read(sql: string): StatementSync {
    return this.#db.prepare(sql);
  }

  /** The hot reads (polling) reuse their compiled statement instead of preparing it per call. */
  cached(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** What the poll cache's entries were read at: this connection's write count, and SQLite's data version if shared. */
  version(): string {
    if (!this.#shared) return String(this.#writes);
    const row = this.cached('PRAGMA data_version').get() as { data_version: number };
    return `${this.#writes}:${row.data_version}`;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
