import type { JobRunner } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { checkBinary, type BinaryCheck } from '../resources/binaries.ts';
import type { ComponentCheck, ComponentStatus, HealthReason } from '../resources/component-check.ts';
import type { DirPool, DirPoolLimits } from '../resources/dir-pool.ts';
import { oneAtATime, reusedFor } from '../resources/one-at-a-time.ts';
import type { StorageGuard } from '../resources/storage-guard.ts';
import { healthStatus, type SystemMonitor } from '../resources/system-monitor.ts';
import type { CircuitBreaker } from '../transcribe/circuit-breaker.ts';
import type { RateLimiter } from '../transcribe/rate-limiter.ts';
import type { ProviderCheck } from '../transcribe/types.ts';
import type { ProviderValidator } from '../validate/provider-validator.ts';

/** The queue component's figures: counts only, which name nothing (a tenant sees them: why its jobs wait). */
export interface QueueLoad {
  jobs_running: number;
  jobs_waiting: number;
  requests_in_flight: number;
  requests_waiting: number;
}

/** A component as the report holds it: the owner's check, and the queue's figures. */
export interface ReportedComponent extends ComponentCheck {
  load?: QueueLoad;
}

/**
 * The readiness report with every component's detail: the operator's view. What another caller sees is cut from
 * it by health-view.ts.
 */
export interface HealthReport {
  status: ComponentStatus;
  components: Record<string, ReportedComponent>;
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
  /** The clock of the dependencies' reuse (HEALTH_REUSE_MS). @default Date.now */
  now?: () => number;
}

/**
 * How long the answers of the store, Redis, the bucket and the limiters (the queue component) are given again to
 * the next reports, from when they came. /health and /health/ready answer anyone, and a client asking one after
 * another would otherwise cost each a request (a bucket's are billed): this bounds it to one per second, whatever
 * the callers. A failing answer is kept as long as a good one: a change either way is seen within a second, well
 * inside an orchestrator's probe period (Kubernetes' default is 10 s), and a dependency that struggles is not
 * asked harder for it. The binaries, providers, disk, memory and job directories are read per report: they ask
 * nothing outside the process (a provider's check has its own cache).
 */
export const HEALTH_REUSE_MS = 1_000;

/** What a report asks outside the process: the reused part of it. */
interface DependencyChecks {
  store: ComponentCheck;
  redis: ComponentCheck | null;
  objectStore: ComponentCheck | null;
  queue: ReportedComponent;
}

/** The provider check's outcome as a code: the codes an upload refusal gives a client already (PROVIDER_AUTH ...). */
function providerReason(check: Pick<ProviderCheck, 'status' | 'code'>): HealthReason | undefined {
  if (check.status === 'ok') return undefined;
  if (check.status === 'degraded') return 'provider_degraded';
  if (check.code === 'PROVIDER_AUTH') return 'provider_auth';
  return check.code === 'PROVIDER_QUOTA' ? 'provider_quota' : 'provider_unavailable';
}

/** The backend's own check, or its breaker's state while that is not closed. */
async function backendCheck(b: HealthBackend): Promise<ComponentCheck> {
  const provider = await b.validator.current();
  const circuit = b.breaker.snapshot();
  if (circuit.state !== 'closed')
    return {
      status: 'degraded',
      detail: `circuit ${circuit.state}: ${circuit.reason ?? ''}`.trim(),
      reason: circuit.state === 'open' ? 'circuit_open' : 'circuit_half_open',
    };
  const reason = providerReason(provider);
  return { status: provider.status, detail: provider.detail, ...(reason ? { reason } : {}) };
}

/** A check (a binary, Redis, the bucket, a pressure level) with `reason` when it is not ok and did not give one. */
function withReason(check: ComponentCheck, reason: HealthReason): ComponentCheck {
  return check.status === 'ok' || check.reason ? check : { ...check, reason };
}

async function storeCheck(store: HealthDeps['store']): Promise<ComponentCheck> {
  try {
    await store.ping();
    return { status: 'ok', detail: `${store.kind} answers` };
  } catch (err) {
    return { status: 'down', detail: `${store.kind}: ${(err as Error).message}`, reason: 'unreachable' };
  }
}

/** The store, Redis, the bucket and the limiters (a shared limiter asks Redis), asked at once. */
async function askDependencies(deps: HealthDeps): Promise<DependencyChecks> {
  const [store, redis, objectStore, stats] = await Promise.all([
    storeCheck(deps.store),
    deps.redisHealth ? deps.redisHealth() : null,
    deps.objectStore(),
    Promise.all(deps.backends.map((b) => b.limiter.stats())),
  ]);
  const limiter = {
    running: stats.reduce((n, s) => n + s.running, 0),
    queued: stats.reduce((n, s) => n + s.queued, 0),
  };
  return {
    store,
    redis: redis && withReason(redis, 'unreachable'),
    objectStore: objectStore && withReason(objectStore, 'unreachable'),
    queue: {
      status: 'ok',
      detail: `${deps.runner.running} jobs running, ${deps.runner.waiting} waiting; ${limiter.running} requests in flight, ${limiter.queued} waiting for a token`,
      load: {
        jobs_running: deps.runner.running,
        jobs_waiting: deps.runner.waiting,
        requests_in_flight: limiter.running,
        requests_waiting: limiter.queued,
      },
    },
  };
}

const RANK: Record<ComponentStatus, number> = { ok: 0, degraded: 1, down: 2 };
const GiB = 1024 ** 3;

/**
 * Per-component status for /health/ready: the binaries are checked once at start, the dependencies at most once per
 * HEALTH_REUSE_MS, everything else per report.
 */
export function createHealth(deps: HealthDeps) {
  const dependencies = reusedFor(() => askDependencies(deps), { reuseMs: HEALTH_REUSE_MS, now: deps.now ?? Date.now });
  let binaries: Record<'ffmpeg' | 'ffprobe', BinaryCheck> = {
    ffmpeg: { status: 'down', detail: 'not checked yet' },
    ffprobe: { status: 'down', detail: 'not checked yet' },
  };

  return {
    async start(): Promise<void> {
      const [ffmpeg, ffprobe] = await Promise.all([checkBinary('ffmpeg'), checkBinary('ffprobe')]);
      binaries = { ffmpeg, ffprobe };
    },

    // Requests while a report is made share it; what it asks outside the process is reused (HEALTH_REUSE_MS).
    report: oneAtATime(async (): Promise<HealthReport> => {
      const components: HealthReport['components'] = {};
      for (const [name, b] of Object.entries(binaries)) components[name] = withReason(b, 'binary_unavailable');
      // The default model's backend is `provider`; each other one `provider:<name>`, whose being down degrades only
      // the jobs sent to it (their uploads are refused), so it reports degraded, never down: the service stays ready.
      const checks = await Promise.all(deps.backends.map((b) => backendCheck(b)));
      deps.backends.forEach((b, i) => {
        const check = checks[i] ?? { status: 'down', detail: 'not checked' };
        if (b.isDefault) components.provider = check;
        else
          components[`provider:${b.name}`] =
            check.status === 'down' ? { ...check, status: 'degraded', detail: `down: ${check.detail}` } : check;
      });
      const asked = await dependencies();
      components.store = asked.store;
      if (asked.redis) components.redis = asked.redis;
      if (asked.objectStore) components.object_store = asked.objectStore;
      const sys = await deps.monitor.sample();
      const free = `${(sys.disk.freeBytes / GiB).toFixed(1)} GiB free`;
      components.disk = deps.storage.isFull()
        ? { status: 'down', detail: `${free}; writes fail for lack of space, jobs paused`, reason: 'disk_full' }
        : withReason({ status: healthStatus(sys.disk.level), detail: free }, 'disk_low');
      components.memory = withReason(
        {
          status: healthStatus(sys.memory.level),
          detail: `rss ${Math.round(sys.memory.rssBytes / 1024 ** 2)} MiB, system free ${(sys.memory.systemFreeBytes / GiB).toFixed(1)} GiB`,
        },
        'memory_low',
      );
      components.queue = asked.queue;
      const dirs = deps.dirPool.usage();
      const { maxLeases, maxBytes } = deps.dirLimits;
      // Informational: a full pool refuses new uploads with 503, but the service is ready for everything else.
      components.job_dirs = {
        status: 'ok',
        detail: `${dirs.leases} of ${maxLeases} leased, ${(dirs.bytes / GiB).toFixed(2)} of ${(maxBytes / GiB).toFixed(2)} GiB`,
        ...(dirs.leases >= maxLeases || dirs.bytes >= maxBytes ? { reason: 'job_dirs_full' } : {}),
      };
      const worst = Object.values(components).reduce<ComponentStatus>(
        (acc, c) => (RANK[c.status] > RANK[acc] ? c.status : acc),
        'ok',
      );
      return { status: worst, components };
    }),
  };
}
