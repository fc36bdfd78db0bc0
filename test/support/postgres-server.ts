import { execFile, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chownSync, existsSync } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { LOOPBACK, type Place } from './place.ts';
import { freePort } from './ports.ts';
import { until } from './until.ts';

/** Debian's PostgreSQL 15 (apt-get install postgresql; scripts/test.sh does it). */
const BIN = '/usr/lib/postgresql/15/bin';
/** The role the tests connect as (trust auth: the server listens on 127.0.0.1 and a socket in its temp dir only). */
const USER = 'chunkscribe';
/** PostgreSQL refuses to run as root: as root, the cluster is made and run as this user. */
const RUN_AS = 'nobody';

export interface TestPostgres {
  /** postgres://chunkscribe@<host>:<port>/<database> for a database made by createDatabase. */
  urlOf(database: string): string;
  /** A fresh, empty database on this server: one per test keeps tests apart without another cluster. */
  createDatabase(): Promise<string>;
  port: number;
  /**
   * Stops the server the hard way (`-m immediate`, as a crash), keeping its data, until up(). The event loop runs
   * meanwhile, so the test's clients see their connections end as a service's would.
   */
  down(): Promise<void>;
  /** Starts the server stopped by down() again, on the same port and data (nothing when it runs). */
  up(): void;
  stop(): Promise<void>;
}

/** The command line that runs `command` (as RUN_AS when root, where `place` says). */
function commandLine(command: string, args: string[], asUser: boolean, place: Place): [string, string[]] {
  const asRoot = process.getuid?.() === 0;
  const [user, userArgs] = asRoot && asUser ? ['runuser', ['-u', RUN_AS, '--', command, ...args]] : [command, args];
  return place.wrap(user, userArgs);
}

function run(command: string, args: string[], asUser: boolean, place: Place = LOOPBACK): void {
  const options: SpawnSyncOptions = { encoding: 'utf8', timeout: 60_000 };
  const [file, argv] = commandLine(command, args, asUser, place);
  const result = spawnSync(file, argv, options);
  if (result.error || result.status !== 0) {
    const output = `${String(result.stdout ?? '')}${String(result.stderr ?? '')}`.trim();
    throw new Error(`${path.basename(command)} failed (${result.status ?? String(result.error)}): ${output}`);
  }
}

let databases = 0;

export interface TestPostgresOptions {
  /** Where the server runs and listens: another host (a network namespace) accepts TCP from 198.18.0.0/15. */
  place?: Place;
  /** @default a port free on 127.0.0.1 */
  port?: number;
}

/**
 * A private PostgreSQL cluster: initdb in a temp dir, the server on a free 127.0.0.1 port (or `place`) and a unix
 * socket in that dir (never the system's), stopped and removed by stop(). fsync is off: the tests never crash the
 * database's host, only the service's processes, and a committed row survives those. Throws (the test fails, it
 * is not skipped) when PostgreSQL is not installed.
 */
export async function startTestPostgres(opts: TestPostgresOptions = {}): Promise<TestPostgres> {
  const place = opts.place ?? LOOPBACK;
  if (!existsSync(path.join(BIN, 'postgres'))) {
    throw new Error(`PostgreSQL 15 is not installed in ${BIN} (apt-get install postgresql; scripts/test.sh does it)`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chunkscribe-pg-'));
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds(RUN_AS);
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const port = opts.port ?? (await freePort());
  run(path.join(BIN, 'initdb'), ['-D', data, '-U', USER, '--auth=trust', '-E', 'UTF8', '--no-sync'], true);
  if (place.host !== LOOPBACK.host) {
    // initdb trusts loopback only; the other hosts of a test are in the network-test range.
    await appendFile(path.join(data, 'pg_hba.conf'), 'host all all 198.18.0.0/15 trust\n');
  }
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    `-c listen_addresses=${place.host}`,
    '-c fsync=off',
    '-c max_connections=200',
  ].join(' ');
  const up = () =>
    run(
      path.join(BIN, 'pg_ctl'),
      ['-D', data, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start'],
      true,
      place,
    );
  up();
  let running = true;
  const stopArgs = ['-D', data, '-m', 'immediate', '-w', 'stop'];
  const down = async () => {
    if (!running) return;
    const [file, argv] = commandLine(path.join(BIN, 'pg_ctl'), stopArgs, true, place);
    await promisify(execFile)(file, argv, { timeout: 60_000 });
    running = false;
  };
  const stop = async () => {
    try {
      if (running) run(path.join(BIN, 'pg_ctl'), stopArgs, true, place);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const urlOf = (database: string) => `postgres://${USER}@${place.host}:${port}/${database}`;
  return {
    port,
    urlOf,
    async createDatabase() {
      databases += 1;
      const name = `t${process.pid}_${databases}`;
      const client = new Client({ connectionString: urlOf('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return name;
    },
    down,
    up() {
      if (running) return;
      up();
      running = true;
    },
    stop,
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const line = spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim();
  const group = spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim();
  if (!/^\d+$/.test(line) || !/^\d+$/.test(group)) throw new Error(`no user ${name} to run PostgreSQL as`);
  return { uid: Number(line), gid: Number(group) };
}

/**
 * A connection of the test's that runs `sql` in a transaction it keeps open (a row lock, an uncommitted insert of
 * the same key): a statement of the service on that row waits for it, in flight when the test kills the server.
 */
export async function blockingTransaction(url: string, [sql, params]: [string, unknown[]]) {
  const client = new Client({ connectionString: url, application_name: 'blocker' });
  // The server's death ends this connection too.
  client.on('error', () => undefined);
  await client.connect();
  return {
    async hold() {
      await client.query('BEGIN');
      await client.query(sql, params);
    },
    /** Until a statement of the service's (application_name chunkscribe) waits on a lock. */
    async waitedOn() {
      const probe = new Client({ connectionString: url });
      await probe.connect();
      try {
        await until(async () => {
          const { rows } = await probe.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'chunkscribe' AND wait_event_type = 'Lock'",
          );
          return rows.length > 0;
        }, "the service's statement to wait on the lock");
      } finally {
        await probe.end();
      }
    },
    close: () => client.end().catch(() => undefined),
  };
}
