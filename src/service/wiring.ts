import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { combineJobEvents } from '../jobs/events.ts';
import { createJobFeed } from '../jobs/job-feed.ts';
import { JobRunner } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { SqliteJobStore } from '../jobs/store.ts';
import { createCleanupManager } from '../retention/cleanup-manager.ts';
import { lockDataDir } from '../resources/data-dir-lock.ts';
import { createDirPool } from '../resources/dir-pool.ts';
import { createHealth } from '../http/health-report.ts';
import { toJobResource } from '../http/job-resource.ts';
import { createJobDirs, type JobDirs } from '../resources/job-dirs.ts';
import { createServiceMetrics } from '../metrics/service-metrics.ts';
import { createPressureGauge } from '../resources/pressure-gauge.ts';
import { createStorageGuard } from '../resources/storage-guard.ts';
import { localUploadLimits, uploadSlotBounds } from '../resources/upload-limits.ts';
import { killStrayProcesses } from '../resources/stray-processes.ts';
import { createSystemMonitor, type SystemReadings } from '../resources/system-monitor.ts';
import type { ModelListing, Services } from '../http/services.ts';
import { createBackendRegistry, type BackendRegistry } from '../transcribe/backends.ts';
import { createUploadStore } from '../storage/index.ts';
import { scaleOutLimiter, scaleOutRunner, scaleOutShared } from '../scale/index.ts';
import { createAdmission } from './admission.ts';
import { createBackendStages } from './backend-stages.ts';
import { createWebhookDispatcher } from '../webhooks/dispatcher.ts';
import { createWebhookSender } from '../webhooks/sender.ts';

/** How often a process sharing the store looks for webhook deliveries left by a process that died (lease: 30 s). */
const WEBHOOK_RESCAN_MS = 30_000;

/** The SQLite file of the job store. */
export function storeFile(config: Pick<Config, 'dataDir'>): string {
  return path.join(config.dataDir, 'jobs.sqlite');
}

/** The service's version, from the package.json beside src/ (and beside dist/ in the image): two folders up. */
function packageVersion(): string {
  const file = path.join(import.meta.dirname, '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The models a job may name, default first, each with the backend that serves it (GET /v1/models). */
function modelListing(registry: BackendRegistry): ModelListing[] {
  return registry.modelIds().flatMap((id) => {
    const info = registry.model(id);
    if (info === undefined) return [];
    return [
      {
        id,
        provider: registry.backendOf(id).spec.name,
        default: id === registry.defaultModel,
        translation: info.translation,
        segmentTimes: info.segmentTimes,
        wordTimes: info.wordTimes,
        languages: info.languages,
      },
    ];
  });
}

/** Test seams: what a test may replace to drive the service into states a machine cannot be put in on demand. */
export interface ServiceOverrides {
  /** Disk and memory readings (pressure tests). */
  readings?: SystemReadings;
  /** The clock of the health report's reuse of its dependencies' answers (health tests). */
  healthNow?: () => number;
  /** How long the cleanup keeps an object without a job row (object store tests). @default ORPHAN_OBJECT_GRACE_MS */
  orphanObjectGraceMs?: number;
  /** How long the put of an upload of `bytes` may take (object store tests). @default putTimeLimitMs */
  putLimitMs?: (bytes: number) => number;
}

/** Builds the pipeline from the config: every module gets its narrow dependencies here and nowhere else. */
export async function createServices(
  config: Config,
  logger: Logger,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  // Scale-out (REDIS_URL set) is decided here, once: other live processes then share DATA_DIR, the store, the
  // upload directories and the ffmpegs under them (src/scale picks the queue and the shared rate limit).
  const shared = config.redisUrl !== undefined;
  const lock = lockDataDir(config.dataDir, { shared });
  const now = () => new Date();
  // DATABASE_URL: the store is shared by every host through PostgreSQL; else SQLite in DATA_DIR. The pg driver is
  // imported only then (~1 MiB of idle RSS otherwise).
  const store: JobStore = config.databaseUrl
    ? await (
        await import('../jobs/pg-store.ts')
      ).PgJobStore.open({ url: config.databaseUrl, logger: logger.child({ component: 'store' }), now })
    : new SqliteJobStore({ file: storeFile(config), now, shared });
  const dirs = createJobDirs({ dataDir: config.dataDir, logger });
  const dirPool = createDirPool({
    dirs,
    limits: { ...config.jobDirs, retryAfterS: config.pressure.retryAfterS },
    logger: logger.child({ component: 'dir-pool' }),
  });
  // STORAGE_URL set: the bucket keeps the uploads and DATA_DIR/jobs is this host's scratch.
  const uploads = await createUploadStore(
    config,
    logger,
    overrides.putLimitMs === undefined ? {} : { putLimitMs: overrides.putLimitMs },
  );

  const monitor = createSystemMonitor({
    dataDir: config.dataDir,
    thresholds: config.pressure.thresholds,
    ...(overrides.readings ? { readings: overrides.readings } : {}),
  });
  const cleanup = createCleanupManager({
    store,
    // Scale-out: a directory without a row may be an upload another API process is still streaming, and only that
    // process knows; such directories are kept rather than deleted under it.
    dirs: shared ? { ...dirs, inProcess: () => true } : dirs,
    uploads,
    logger: logger.child({ component: 'cleanup' }),
    config: {
      retentionMs: config.retention.jobsMs,
      uploadRetentionMs: config.retention.uploadsMs,
      intervalMs: config.retention.sweepIntervalMs,
      ...(overrides.orphanObjectGraceMs === undefined ? {} : { orphanGraceMs: overrides.orphanObjectGraceMs }),
    },
    clock: now,
  });
  const storage = createStorageGuard({
    logger: logger.child({ component: 'storage' }),
    // Jobs resume once the volume has its reserve back, not at the first free block: the emergency cleanup runs meanwhile.
    hasRoom: async () => (await monitor.sample()).disk.freeBytes >= monitor.thresholds.diskFreeCriticalBytes,
    retryMs: config.pressure.sampleIntervalMs,
    maxWaitMs: config.pressure.diskFullMaxWaitMs,
    onFull: () => void pressure.refresh().catch((err: unknown) => logger.warn({ err }, 'pressure refresh failed')),
  });
  const pressure = createPressureGauge({
    monitor,
    logger: logger.child({ component: 'pressure' }),
    onCritical: () => cleanup.emergency(),
    storageFull: () => storage.isFull(),
  });
  // The runner removes an ended job's upload through `dirs.removeUpload`; routing that through the cleanup policy
  // is what lets UPLOAD_RETENTION_HOURS keep it.
  const pipelineDirs: JobDirs = { ...dirs, removeUpload: (id) => cleanup.releaseUpload(id) };
  const metrics = createServiceMetrics(
    {
      jobCounts: () => store.countByStatus(),
      // Read at scrape time, after the backends below exist.
      limiterStats: () =>
        Promise.all(registry.backends.map(async (b) => ({ provider: b.spec.name, stats: await b.limiter.stats() }))),
      pressureLevel: () => pressure.level(),
      disk: () => pressure.last()?.disk ?? null,
      circuits: () => registry.backends.map((b) => ({ provider: b.spec.name, state: b.breaker.snapshot().state })),
    },
    { version: packageVersion(), nodeVersion: process.version },
  );
  // Scale-out: the upload bounds per key and the circuit breakers are every host's, through Redis.
  const sharedState = await scaleOutShared(config, logger);
  // Every configured backend, each with its own provider, limiter, breaker and transcriber; jobs go by model.
  const registry = await createBackendRegistry(config, {
    metrics,
    logger,
    sharedLimiter: (backend) => scaleOutLimiter(config, logger, backend),
    sharedCircuit: (backend) => sharedState?.circuit(backend.name) ?? null,
  });
  const stages = createBackendStages(config, { registry, logger });
  // Asked now, while the rest is built: a fresh service's first upload finds the answer in (or nearly). The
  // engines' checks load no SDK (see lazyProvider), so the idle service stays without it.
  stages.warmProviders();
  const admission = createAdmission(config, { logger, monitor, registry, stages });

  const webhooks = createWebhookDispatcher({
    store,
    describe: async (job, nowMs) => toJobResource(job, await store.listChunkStates(job.id), nowMs),
    send: createWebhookSender({
      allowPrivate: config.webhooks.allowPrivate,
      ports: config.webhooks.ports,
      timeoutMs: config.webhooks.timeoutMs,
    }),
    logger: logger.child({ component: 'webhooks' }),
    secret: config.webhooks.secret,
    maxAttempts: config.webhooks.maxAttempts,
    retryBaseMs: config.webhooks.retryBaseMs,
    retryMaxMs: config.webhooks.retryMaxMs,
    onOutcome: (outcome) => metrics.webhookDelivery(outcome),
    holder: `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    // Other processes share the store: one that dies mid-attempt leaves a delivery only a backlog pass finds.
    // Else this process alone uses the store (its SQLite file, under the exclusive DATA_DIR lock): every other
    // holder of a lease in it is dead.
    ...(shared || config.databaseUrl ? { rescanMs: WEBHOOK_RESCAN_MS } : { soleSender: true }),
  });
  const events = combineJobEvents(metrics, webhooks);

  const localRunner = new JobRunner({
    logger,
    store,
    now,
    leases: dirPool,
    maxConcurrentJobs: config.maxConcurrentJobs,
    events,
    pipeline: {
      store,
      dirs: pipelineDirs,
      uploads,
      storage,
      chunks: stages.chunks,
      transcribe: (input, hooks) => registry.backendOf(input.model).transcriber.transcribe(input, hooks),
      concurrency: config.concurrency,
      maxFailedChunkRatio: config.maxFailedChunkRatio,
      now,
    },
  });

  // Scale-out: a BullMQ queue in front of the local runner, which then only runs the jobs this worker takes.
  const { runner, redisHealth } = await scaleOutRunner(config, { local: localRunner, store, dirs, logger, now });

  const health = createHealth({
    store,
    monitor,
    backends: stages.health,
    runner,
    dirPool,
    dirLimits: config.jobDirs,
    redisHealth,
    storage,
    objectStore: () => uploads.check(),
    ...(overrides.healthNow ? { now: overrides.healthNow } : {}),
  });
  let closing: Promise<void> | null = null;

  return {
    config,
    store,
    dirs,
    uploads,
    dirPool,
    runner,
    uploadLimits: sharedState?.uploadLimits ?? localUploadLimits(uploadSlotBounds(config)),
    feed: createJobFeed({
      store,
      pollMs: config.events.pollMs,
      logger: logger.child({ component: 'job-feed' }),
    }),
    ...admission,
    listModels: () => modelListing(registry),
    health: () => health.report(),
    pressure,
    storage,
    events,
    metricsRegistry: metrics.registry,
    async start() {
      await health.start();
      await uploads.start();
      // In scale-out mode other live processes own those ffmpegs and upload directories: nothing here is stray.
      if (!shared) {
        await killStrayProcesses({ jobsRoot: dirs.root, logger });
        await dirs.sweepOrphans(await store.jobIds());
      }
      // Leftovers of jobs that ended just before a crash, and rows whose retention ran out while the service was down.
      await cleanup.sweep();
      cleanup.start();
      await runner.resumeUnfinished();
      await webhooks.start();
    },
    close() {
      // Every step runs even when one fails: drain jobs, stop the limiter, close the store. The storage guard and
      // the cleanup keep running while jobs drain: a result waiting for disk space is stored (not paid again) if
      // space comes back within the grace, and an emergency cleanup may be what frees it.
      closing ??= (async () => {
        const steps = [
          () => runner.close(config.shutdownTimeoutMs),
          () => cleanup.stop(),
          async () => storage.stop(),
          async () => stages.stopProviders(),
          async () => {
            await Promise.all(registry.backends.map((b) => b.limiter.stop()));
          },
          () => webhooks.stop(),
          async () => sharedState?.close(),
          () => store.close(),
          async () => uploads.close(),
          async () => lock.release(),
        ];
        for (const step of steps) {
          await step().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
        }
      })();
      return closing;
    },
  };
}
