import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { RequestLogEntry } from '../../test/fake-openai/types.ts';
import { startFakeOpenAIProcess, type FakeOpenAIProcess } from '../../test/support/fake-openai-process.ts';
import { createNetns, type Netns, type NetnsHost } from '../../test/support/netns.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres-server.ts';
import { startTestRedis, type TestRedis } from '../../test/support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startS3Process, type S3Bucket } from '../../test/support/s3-server.ts';
import { fakeProviderEnv, type BenchContext } from './context.ts';
import { startService, type ServiceHandle } from './service.ts';

/** The shared servers' ports on the db host: a namespace of its own, where nothing else listens. */
const PORTS = { postgres: 5432, redis: 6379, s3: 9000, fake: 8080, fakeControl: 8081 } as const;

/**
 * Hosts as network namespaces (test/support/netns.ts, 198.18.0.0/15): PostgreSQL, Redis, s3rver and the fake
 * OpenAI server on host `db`, the service's processes on the others, each with a scratch DATA_DIR of its own, so
 * they share nothing but those servers and the network. The harness reaches every host from the root namespace.
 */
export interface BenchCluster {
  net: Netns;
  db: NetnsHost;
  pg: TestPostgres;
  redis: TestRedis;
  s3: S3Bucket;
  fake: FakeOpenAIProcess;
  /**
   * What every process of one deployment gets: a database, a queue prefix and a bucket prefix of its own (`name`),
   * the fake provider with a rate limit that never binds. `uploads: 'local'` leaves uploads on DATA_DIR.
   */
  deployment(name: string, uploads: 'local' | 's3'): Promise<Deployment>;
  close(): Promise<void>;
}

export interface Deployment {
  env: Record<string, string>;
  /** The service's job queue on this deployment's prefix, for the harness to hold and release. */
  queue(): Queue;
  /** Starts the service at `host` (`ROLE=role`) on `dataDir`, or on a new scratch dir removed at stop. */
  start(
    host: NetnsHost,
    role: 'api' | 'worker',
    extra?: Record<string, string>,
    dataDir?: string,
  ): Promise<ServiceHandle>;
  /** Transcription requests the fake provider saw so far (all deployments: reset between them). */
  transcriptions(): Promise<RequestLogEntry[]>;
}

export async function startBenchCluster(
  ctx: BenchContext,
  hosts: readonly string[],
  latencyMs: number,
): Promise<BenchCluster> {
  const net = await createNetns(['db', ...hosts]);
  const db = net.host('db');
  const started: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of started.reverse()) await stop().catch(() => undefined);
    await net.remove();
  };
  try {
    const pg = await startTestPostgres({ place: db, port: PORTS.postgres });
    started.push(() => pg.stop());
    const redis = await startTestRedis({ place: db, port: PORTS.redis });
    started.push(() => redis.stop());
    const s3 = await startS3Process(db, PORTS.s3, 'chunkscribe-bench');
    started.push(() => s3.close());
    const fake = await startFakeOpenAIProcess(db, { port: PORTS.fake, controlPort: PORTS.fakeControl, latencyMs });
    started.push(() => fake.close());
    return {
      net,
      db,
      pg,
      redis,
      s3,
      fake,
      async deployment(name, uploads) {
        const env = fakeProviderEnv(fake, {
          DATABASE_URL: pg.urlOf(await pg.createDatabase()),
          REDIS_URL: redis.url,
          REDIS_PREFIX: name,
          ...(uploads === 's3' ? { ...s3Env(s3, `${name}/`), ...S3RVER_CREDENTIALS } : {}),
          LOG_LEVEL: 'info',
          // The harness's own load must not make the API refuse uploads as busy.
          PRESSURE_EVENT_LOOP_DELAY_MS: '0',
          UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
          // The bench drives the hosts from another one (its own veth); open mode serves it, as in the compose cluster.
          OPEN_MODE_CLIENTS: 'any',
        });
        return {
          env,
          queue: () => new Queue('jobs', { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix: name }),
          async start(host, role, extra = {}, dataDir) {
            const scratch = dataDir ?? (await mkdtemp(path.join(ctx.workDir, `${name}-${host.name}-`)));
            const svc = await startService({
              env: { ...env, ROLE: role, ...extra },
              workDir: ctx.workDir,
              name: `${name}-${host.name}`,
              dataDir: scratch,
              entry: ctx.serviceEntry,
              place: host,
            });
            return {
              ...svc,
              async stop() {
                await svc.stop();
                if (dataDir === undefined && !ctx.keep) await rm(scratch, { recursive: true, force: true });
              },
            };
          },
          transcriptions: async () => (await fake.requests()).filter((r) => r.path === '/v1/audio/transcriptions'),
        };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
