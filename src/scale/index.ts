import type { ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { JobQueue, JobRunner } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import { killStrayProcesses } from '../resources/stray-processes.ts';
import type { ComponentCheck } from '../resources/component-check.ts';
import { uploadSlotBounds, type UploadLimits } from '../resources/upload-limits.ts';
import type { BackendSpec } from '../transcribe/backends-config.ts';
import type { SharedCircuit } from '../transcribe/circuit-share.ts';
import type { RateLimiter } from '../transcribe/rate-limiter.ts';

/** BullMQ needs commands to wait through a Redis restart rather than fail after a few retries. */
function connectionFor(url: string): ConnectionOptions {
  return { url, maxRetriesPerRequest: null };
}

// BullMQ and ioredis are loaded only in scale-out mode: they add ~25 MiB of RSS to a process that never uses them.

/**
 * A backend's limit shared through Redis in scale-out mode, keyed by its name (each backend is its own account or
 * server); null in the single-process mode.
 */
export async function scaleOutLimiter(
  config: Config,
  logger: Logger,
  backend: Pick<BackendSpec, 'name' | 'rateLimit' | 'maxInFlight'>,
): Promise<RateLimiter | null> {
  if (!config.redisUrl) return null;
  const { createSharedRateLimiter } = await import('./shared-rate-limiter.ts');
  return createSharedRateLimiter({
    connection: connectionFor(config.redisUrl),
    prefix: config.scale.prefix,
    backend: backend.name,
    rpm: backend.rateLimit.rpm,
    burst: backend.rateLimit.burst,
    maxInFlight: backend.maxInFlight,
    logger,
  });
}

/**
 * The BullMQ queue in front of the local runner in scale-out mode, with a readiness check of its Redis connection;
 * the local runner itself and no check otherwise.
 */
export async function scaleOutRunner(
  config: Config,
  deps: { local: JobRunner; store: JobStore; dirs: JobDirs; logger: Logger; now: () => Date },
): Promise<{ runner: JobQueue; redisHealth: (() => Promise<ComponentCheck>) | null }> {
  if (!config.redisUrl) return { runner: deps.local, redisHealth: null };
  const { QueueRunner } = await import('./queue-runner.ts');
  const runner = new QueueRunner({
    redisUrl: config.redisUrl,
    connection: connectionFor(config.redisUrl),
    prefix: config.scale.prefix,
    role: config.scale.role,
    local: deps.local,
    store: deps.store,
    logger: deps.logger.child({ component: 'queue', role: config.scale.role }),
    concurrency: config.maxConcurrentJobs,
    lockDurationMs: config.scale.lockMs,
    stalledIntervalMs: config.scale.stalledIntervalMs,
    retryAfterS: config.pressure.retryAfterS,
    sweepStrays: async (jobId) => {
      await killStrayProcesses({ jobsRoot: deps.dirs.jobDir(jobId), logger: deps.logger });
    },
    now: deps.now,
  });
  return { runner, redisHealth: () => runner.redisHealth() };
}

/** What every host shares in scale-out mode besides the queue and the provider limit. */
export interface ScaleOutShared {
  /** The upload slots and the upload rate per key. */
  uploadLimits: UploadLimits;
  /** A backend's circuit breaker state, by backend name. */
  circuit(backend: string): SharedCircuit;
  close(): void;
}

/**
 * The per-key upload bounds and the circuit breakers shared through Redis in scale-out mode; null in the
 * single-process mode (each process keeps its own).
 */
export async function scaleOutShared(config: Config, logger: Logger): Promise<ScaleOutShared | null> {
  if (!config.redisUrl) return null;
  const [{ randomUUID }, { connectFailFast }, limits, { createCircuitBus }] = await Promise.all([
    import('node:crypto'),
    import('./shared-redis.ts'),
    import('./shared-upload-limits.ts'),
    import('./shared-circuit.ts'),
  ]);
  const log = logger.child({ component: 'shared-limits' });
  const client = await connectFailFast(config.redisUrl, log);
  const { prefix } = config.scale;
  const retryAfterS = config.pressure.retryAfterS;
  const bus = createCircuitBus({ redisUrl: config.redisUrl, client, prefix, processId: randomUUID(), logger });
  return {
    uploadLimits: {
      slots: limits.createSharedUploadSlots({ client, prefix, logger: log, ...uploadSlotBounds(config) }),
      rateCounter: limits.createSharedUploadCounter({ client, prefix, retryAfterS, logger: log }),
    },
    circuit: (backend) => bus.circuit(backend),
    close() {
      bus.close();
      client.disconnect();
    },
  };
}
