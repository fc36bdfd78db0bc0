import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';
import type { RequestLogEntry } from '../fake-openai/types.ts';
import { FAKE_OPENAI_KEY } from '../fake-openai/types.ts';
import { removeDir, tempDataDir } from '../helper.ts';
import { startFakeOpenAIProcess, type FakeOpenAIProcess } from '../support/fake-openai-process.ts';
import { createNetns, type Netns, type NetnsHost } from '../support/netns.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startS3Process, type S3Bucket } from '../support/s3-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';

/** One service process on one host, with the scratch DATA_DIR it was given. */
export interface HostService extends ServiceProcess {
  host: NetnsHost;
  dataDir: string;
  /** Whether a log line names the job and says `msg`. */
  logged(jobId: string, msg: string): boolean;
}

export interface Cluster {
  netns: Netns;
  db: NetnsHost;
  fake: FakeOpenAIProcess;
  s3: S3Bucket;
  /** Starts the service with ROLE=role on the host (scratch: `dataDir`, or a new empty one) and waits until it listens. */
  start(host: string, role: 'api' | 'worker', env?: Record<string, string>, dataDir?: string): Promise<HostService>;
  /** Chunk indexes whose result the store holds for the job. */
  storedChunks(jobId: string): Promise<number[]>;
  /** Files under DATA_DIR/jobs of a host's scratch. */
  scratchFiles(dataDir: string): Promise<string[]>;
  /** Stops everything (services, servers, namespaces, scratch dirs); every step runs even when one fails. */
  close(): Promise<void>;
}

/** The transcription requests of the fake's log. */
export const transcriptions = (log: RequestLogEntry[]): RequestLogEntry[] =>
  log.filter((r) => r.path === '/v1/audio/transcriptions');
/** The chunk index the request's file name carries (`<prefix><5-digit index>.<ext>`). */
export const chunkOf = (r: RequestLogEntry): number => Number(/(\d{5,})\.\w+$/.exec(r.filename ?? '')?.[1] ?? -1);
/** The chunk file's extension: which upload a request was for, when the uploads differ in format. */
export const formatOf = (r: RequestLogEntry): string => /\.(\w+)$/.exec(r.filename ?? '')?.[1] ?? '';

/**
 * Hosts `db` (PostgreSQL, Redis, s3rver and the fake OpenAI server with `latencyMs`), and one namespace per name
 * of `serviceHosts` for the service's processes. The services reach the servers only at the db host's address.
 */
export async function startCluster(serviceHosts: readonly string[], latencyMs: number): Promise<Cluster> {
  const netns = await createNetns(['db', ...serviceHosts]);
  const db = netns.host('db');
  const cleanups: Array<() => Promise<void>> = [() => netns.remove()];
  const close = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const pg: TestPostgres = await startTestPostgres({ place: db, port: 5432 });
    cleanups.push(() => pg.stop());
    const databaseUrl = pg.urlOf(await pg.createDatabase());
    const redis: TestRedis = await startTestRedis({ place: db, port: 6379 });
    cleanups.push(() => redis.stop());
    const s3 = await startS3Process(db, 9000);
    cleanups.push(() => s3.close());
    const fake = await startFakeOpenAIProcess(db, { port: 8080, controlPort: 8081, latencyMs });
    cleanups.push(() => fake.close());
    const sql = new Client({ connectionString: databaseUrl });
    await sql.connect();
    cleanups.push(() => sql.end());

    const start: Cluster['start'] = async (name, role, env = {}, dataDir = undefined) => {
      const host = netns.host(name);
      const dir = dataDir ?? (await tempDataDir());
      if (!dataDir) cleanups.push(() => removeDir(dir));
      const proc = spawnService(
        {
          ROLE: role,
          DATA_DIR: dir,
          DATABASE_URL: databaseUrl,
          REDIS_URL: redis.url,
          ...s3Env(s3),
          ...S3RVER_CREDENTIALS,
          OPENAI_API_KEY: FAKE_OPENAI_KEY,
          OPENAI_BASE_URL: fake.url,
          // Under the load of a shared CI machine the event-loop check would refuse uploads.
          PRESSURE_EVENT_LOOP_DELAY_MS: '0',
          // The test process is another host; as in the compose cluster's containers, open mode serves it.
          OPEN_MODE_CLIENTS: 'any',
          ...env,
        },
        [],
        host,
      );
      // Power-off of every process of the host, whatever the test did.
      cleanups.push(() => netns.killAll(host));
      await proc.url;
      return {
        ...proc,
        host,
        dataDir: dir,
        logged: (jobId, msg) =>
          proc.lines.some((l) => l.includes(`"jobId":"${jobId}"`) && l.includes(`"msg":"${msg}"`)),
      };
    };
    return {
      netns,
      db,
      fake,
      s3,
      start,
      async storedChunks(jobId) {
        const { rows } = await sql.query<{ idx: number }>(
          "SELECT idx FROM chunks WHERE job_id = $1 AND status = 'done' ORDER BY idx",
          [jobId],
        );
        return rows.map((r) => r.idx);
      },
      async scratchFiles(dataDir) {
        const names = await readdir(path.join(dataDir, 'jobs'), { recursive: true }).catch(() => []);
        return names.map(String);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
