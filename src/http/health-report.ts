import type { JobRunner } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { checkBinary, type BinaryCheck } from '../resources/binaries.ts';
import type { ComponentCheck, ComponentStatus } from '../resources/component-check.ts';
import type { DirPool, DirPoolLimits } from '../resources/dir-pool.ts';
import type { StorageGuard } from '../resources/storage-guard.ts';
import { healthStatus, type SystemMonitor } from '../resources/system-monitor.ts';
import type { CircuitBreaker } from '../transcribe/circuit-breaker.ts';
import type { RateLimiter } from '../transcribe/rate-limiter.ts';
import type { ProviderValidator } from '../validate/provider-validator.ts';

/**
 * The readiness report with every component's detail. What a caller sees is HealthReport of health-schemas.ts: the
 * same report, with the details only for a caller allowed to see internals (routes/health.ts).
 */
export interface HealthReport {
  status: ComponentStatus;
  components: Record<string, ComponentCheck>;
}

/** One transcription backend as the report sees it. */
export interface HealthBackend {
  name: string;
  /** Serves the default model: its being down makes the service not ready. */
  isDefault: boolean;
  validator: Pick<ProviderValidator, 'current'>;
  breaker: Pick<CircuitBreaker, 'snapshot'>;
  limiter: Pick<RateLimiter, 'stats'>;
}

export interface HealthDeps {
  store: Pick<JobStore, 'ping' | 'kind'>;
  monitor: Pick<SystemMonitor, 'sample'>;
  /** Every backend; the default one first. */
  backends: readonly HealthBackend[];
  runner: Pick<JobRunner, 'running' | 'waiting'>;
  dirPool: Pick<DirPool, 'usage'>;
  dirLimits: Pick<DirPoolLimits, 'maxLeases' | 'maxBytes'>;
  storage: Pick<StorageGuard, 'isFull'>;
  /** Scale-out mode: the queue's Redis, reported as the `redis` component (down = not ready). Null otherwise. */
  redisHealth: (() => Promise<ComponentCheck>) | null;
  /** The uploads' bucket (STORAGE_URL set) as the `object_store` component (down = not ready); null: local disk. */
  objectStore: () => Promise<ComponentCheck | null>;
}

/** The backend's own check, or its breaker's state while that is not closed. */
async function backendCheck(b: HealthBackend): Promise<ComponentCheck> {
  const provider = await b.validator.current();
  const circuit = b.breaker.snapshot();
  return circuit.state === 'closed'
    ? { status: provider.status, detail: provider.detail }
    : { status: 'degraded', detail: `circuit ${circuit.state}: ${circuit.reason ?? ''}`.trim() };
}

const RANK: Record<ComponentStatus, number> = { ok: 0, degraded: 1, down: 2 };
const GiB = 1024 ** 3;

/** Per-component status for /health/ready: the binaries are checked once at start, everything else per request. */
export function createHealth(deps: HealthDeps) {
  let binaries: Record<'ffmpeg' | 'ffprobe', BinaryCheck> = {
    ffmpeg: { status: 'down', detail: 'not checked yet' },
    ffprobe: { status: 'down', detail: 'not checked yet' },
  };

  return {
    async start(): Promise<void> {
      const [ffmpeg, ffprobe] = await Promise.all([checkBinary('ffmpeg'), checkBinary('ffprobe')]);
      binaries = { ffmpeg, ffprobe };
    },

    async report(): Promise<HealthReport> {
      const components: HealthReport['components'] = { ...binaries };
      // The default model's backend is `provider`; each other one `provider:<name>`, whose being down degrades only
      // the jobs sent to it (their uploads are refused), so it reports degraded, never down: the service stays ready.
      const checks = await Promise.all(deps.backends.map((b) => backendCheck(b)));
      deps.backends.forEach((b, i) => {
        const check = checks[i] ?? { status: 'down', detail: 'not checked' };
        if (b.isDefault) components.provider = check;
        else
          components[`provider:${b.name}`] =
            check.status === 'down' ? { status: 'degraded', detail: `down: ${check.detail}` } : check;
      });
      try {
        await deps.store.ping();
        components.store = { status: 'ok', detail: `${deps.store.kind} answers` };
      } catch (err) {
        components.store = { status: 'down', detail: `${deps.store.kind}: ${(err as Error).message}` };
      }
      if (deps.redisHealth) components.redis = await deps.redisHealth();
      const objectStore = await deps.objectStore();
      if (objectStore) components.object_store = objectStore;
      const sys = await deps.monitor.sample();
      const free = `${(sys.disk.freeBytes / GiB).toFixed(1)} GiB free`;
      components.disk = deps.storage.isFull()
        ? { status: 'down', detail: `${free}; writes fail for lack of space, jobs paused` }
        : { status: healthStatus(sys.disk.level), detail: free };
      components.memory = {
        status: healthStatus(sys.memory.level),
        detail: `rss ${Math.round(sys.memory.rssBytes / 1024 ** 2)} MiB, system free ${(sys.memory.systemFreeBytes / GiB).toFixed(1)} GiB`,
      };
      const stats = await Promise.all(deps.backends.map((b) => b.limiter.stats()));
      const limiter = {
        running: stats.reduce((n, s) => n + s.running, 0),
        queued: stats.reduce((n, s) => n + s.queued, 0),
      };
      components.queue = {
        status: 'ok',
        detail: `${deps.runner.running} jobs running, ${deps.runner.waiting} waiting; ${limiter.running} requests in flight, ${limiter.queued} waiting for a token`,
      };
      const dirs = deps.dirPool.usage();
      // Informational: a full pool refuses new uploads with 503, but the service is ready for everything else.
      components.job_dirs = {
        status: 'ok',
        detail: `${dirs.leases} of ${deps.dirLimits.maxLeases} leased, ${(dirs.bytes / GiB).toFixed(2)} of ${(deps.dirLimits.maxBytes / GiB).toFixed(2)} GiB`,
      };
      const worst = Object.values(components).reduce<ComponentStatus>(
        (acc, c) => (RANK[c.status] > RANK[acc] ? c.status : acc),
        'ok',
      );
      return { status: worst, components };
    },
  };
}
