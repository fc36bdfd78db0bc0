import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino, { type Logger } from 'pino';
import { inject } from 'vitest';
import { buildApp, type App } from '../src/http/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import type { Services } from '../src/http/services.ts';
import type { JobStore } from '../src/jobs/job-store.ts';
import { PgJobStore } from '../src/jobs/pg-store.ts';
import { SqliteJobStore } from '../src/jobs/store.ts';
import { createServices, type ServiceOverrides } from '../src/service/wiring.ts';
import { until, type UntilOptions } from './support/until.ts';

/** The JSON bodies the tests read: the job resource, an error, a list. Loose on purpose: tests assert the fields. */
export type JsonValue = string | number | boolean | null | undefined | JsonValue[] | Json;
export interface Json {
  [key: string]: JsonValue;
}
export type JobJson = Json & {
  id: string;
  status: string;
  stage: string | null;
  progress: { chunks_total: number; chunks_done: number; chunks_failed: number; percent: number; eta_s: number | null };
  links: { self: string; transcript: string };
  error: { code: string; message: string } | null;
};
export type ErrorJson = { error: { code: string; message: string; details?: Record<string, unknown> } };

export interface TestServer {
  app: App;
  /** The services behind the app (the job feed's follow count, the store), for what a client cannot see. */
  services: Services;
  url: string;
  config: Config;
  dataDir: string;
  close(): Promise<void>;
}

/** A temp DATA_DIR that the caller removes (or passes to startServer again to test a restart). */
export async function tempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'cs-data-'));
}

/**
 * The real app with the real pipeline, listening on 127.0.0.1:0. A variable of `env` set to undefined is unset;
 * `overrides` are the services' test seams (a clock).
 */
export async function startServer(
  env: Record<string, string | undefined> = {},
  dataDir?: string,
  overrides: ServiceOverrides = {},
): Promise<TestServer> {
  const dir = dataDir ?? (await tempDataDir());
  const config = loadConfig({
    DATA_DIR: dir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    CHUNK_SECONDS: '10',
    CHUNK_OVERLAP_SECONDS: '0',
    // Tests upload far faster than a client would; the limit has its own tests (api-operations).
    UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
    // Many tests send wrong keys on purpose, all from 127.0.0.1; the lockout has its own tests (auth-failures).
    AUTH_FAILURES_PER_MINUTE: '0',
    ...(await storeEnv(dir)),
    ...env,
  });
  const { app, services, url } = await listenApp(config, pino({ level: config.logLevel }), overrides);
  return { app, services, url, config, dataDir: dir, close: () => app.close() };
}

/** TEST_STORE=postgresql (test/global-setup.ts): each DATA_DIR's jobs in a database of its own, the same one on a restart. */
const databases = new Map<string, string>();

async function storeEnv(dataDir: string): Promise<Record<string, string>> {
  const server = inject('testPostgresUrl');
  if (!server) return {};
  let url = databases.get(dataDir);
  if (!url) {
    const name = `d${process.pid}_${databases.size + 1}`;
    const admin = new Client({ connectionString: `${server}postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    url = `${server}${name}`;
    databases.set(dataDir, url);
  }
  return { DATABASE_URL: url };
}

/**
 * The job store a service started on `dataDir` keeps its jobs in (SQLite in it, or its PostgreSQL database with
 * TEST_STORE=postgresql), for a test that writes rows as a previous process would have left them. Close it.
 */
export async function storeOf(dataDir: string): Promise<JobStore> {
  const { DATABASE_URL: url } = await storeEnv(dataDir);
  if (url) return PgJobStore.open({ url, logger: pino({ level: 'silent' }) });
  return new SqliteJobStore({ file: path.join(dataDir, 'jobs.sqlite') });
}

/** Services and app built from `config` as the server builds them, started and listening on 127.0.0.1:0. */
export async function listenApp(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<{ app: App; services: Services; url: string }> {
  const services = await createServices(config, logger, overrides);
  const app = await buildApp({ services, logger });
  await services.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { app, services, url: `http://127.0.0.1:${address.port}` };
}

export async function upload(
  url: string,
  file: string | Blob | null,
  fields: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; body: JobJson & ErrorJson; headers: Headers }> {
  const form = new FormData();
  if (typeof file === 'string') form.append('file', await openAsBlob(file), path.basename(file));
  else if (file) form.append('file', file, 'upload.bin');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${url}/v1/jobs`, { method: 'POST', body: form, headers });
  return { status: res.status, body: (await res.json()) as JobJson & ErrorJson, headers: res.headers };
}

export async function getJson<T = Json>(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as T };
}

export interface PollJobOptions extends UntilOptions {
  headers?: Record<string, string>;
}

/**
 * Reads the job until `done(job)`, and returns it as last read with every percent seen on the way. Fails after
 * `timeoutMs` (default 100 s, inside vitest's 120 s test timeout) naming `what` and the state last seen.
 */
export async function pollJob<T extends JobJson = JobJson>(
  url: string,
  id: string,
  done: (job: T) => boolean,
  what: string,
  options: PollJobOptions = {},
): Promise<T & { percentsSeen: number[] }> {
  const { headers = {}, ...untilOptions } = options;
  const seen: number[] = [];
  let last: T | undefined;
  await until(
    async () => {
      const { status, body } = await getJson<T>(`${url}/v1/jobs/${id}`, headers);
      if (status !== 200) throw new Error(`GET job ${id} answered ${status}: ${JSON.stringify(body)}`);
      last = body;
      seen.push(body.progress.percent);
      return done(body);
    },
    () =>
      `${what} (job ${id}); last seen: ${last ? JSON.stringify({ status: last.status, stage: last.stage, progress: last.progress }) : 'never'}`,
    { timeoutMs: 100_000, everyMs: 100, ...untilOptions },
  );
  if (!last) throw new Error(`job ${id} was never read`);
  return { ...last, percentsSeen: seen };
}

/** Polls until the job is in a terminal state (see pollJob). */
export function waitForJob(
  url: string,
  id: string,
  headers: Record<string, string> = {},
  options: UntilOptions = {},
): Promise<JobJson & { percentsSeen: number[] }> {
  return pollJob(url, id, (job) => ['completed', 'failed', 'cancelled'].includes(job.status), 'the job to end', {
    headers,
    ...options,
  });
}

/** Every file left under DATA_DIR/jobs (what a rejected upload must not leave behind). */
export async function jobFiles(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'jobs');
  try {
    return (await readdir(root, { recursive: true })).map(String);
  } catch {
    return [];
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** The routes an app registers, from Fastify's own route table, without the HEAD twins of GET routes. */
export function registeredRoutes(app: App): Array<{ method: string; url: string }> {
  const out: Array<{ method: string; url: string }> = [];
  // One node a line, indented four columns a level; a node's path continues its parent's.
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m?.[1]) continue;
    const depth = (line.indexOf('── ') - 1) / 4;
    prefixes.length = depth;
    const url = `${prefixes.join('')}${m[1]}`;
    prefixes.push(m[1]);
    for (const method of m[2]?.split(', ') ?? []) if (method !== 'HEAD') out.push({ method, url });
  }
  return out;
}
