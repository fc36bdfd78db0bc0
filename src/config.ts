import path from 'node:path';
import { apiKeysOf, isBearerText } from './config/api-keys.ts';
import { envSchema, type ParsedEnv } from './config/env.ts';
import { objectStoreConfig } from './config/object-store.ts';
import { trustedProxies } from './config/trust-proxy.ts';
import type { Config } from './config/types.ts';
import { callbackPorts } from './config/webhook-ports.ts';
import { backendsFromEnv } from './transcribe/backends-env.ts';
import type { EngineDefaults } from './transcribe/engine.ts';
import { engineDefaults } from './transcribe/providers/index.ts';

/*
 * The configuration: the environment read and validated once (loadConfig). Its parts are in src/config/: the env
 * schema (env), the Config type (types), the settings read beyond their schema (api-keys, object-store,
 * trust-proxy) and the config as it may be shown, without secrets (redact).
 */
export { envSchema, type Env } from './config/env.ts';
export { parseApiKeys, type ApiKey } from './config/api-keys.ts';
export type { ObjectStoreConfig } from './config/object-store.ts';
export { redactConfig, redactUrl } from './config/redact.ts';
export type { Config, SystemThresholds } from './config/types.ts';

/** Pairs whose critical threshold must lie beyond the elevated one, named as the operator wrote them. */
const THRESHOLD_PAIRS = [
  ['PRESSURE_DISK_FREE_ELEVATED_BYTES', 'PRESSURE_DISK_FREE_CRITICAL_BYTES', 'lower'],
  ['PRESSURE_RSS_ELEVATED_BYTES', 'PRESSURE_RSS_CRITICAL_BYTES', 'higher'],
  ['PRESSURE_HEAP_ELEVATED_RATIO', 'PRESSURE_HEAP_CRITICAL_RATIO', 'higher'],
  ['PRESSURE_SYSTEM_FREE_ELEVATED_BYTES', 'PRESSURE_SYSTEM_FREE_CRITICAL_BYTES', 'lower'],
] as const;

export class ConfigError extends Error {
  readonly issues: string[];

  constructor(issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.issues = issues;
    this.name = 'ConfigError';
  }
}

/** Parse and validate the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const misordered = THRESHOLD_PAIRS.filter(([elevated, critical, critIs]) =>
    critIs === 'lower' ? e[critical] > e[elevated] : e[critical] < e[elevated],
  ).map(([elevated, critical, critIs]) => `${critical}: must be ${critIs} than or equal to ${elevated}`);
  if (misordered.length > 0) throw new ConfigError(misordered);
  if (e.JOB_DIRS_MAX_BYTES < e.MAX_UPLOAD_BYTES) {
    throw new ConfigError([
      'JOB_DIRS_MAX_BYTES: must be at least MAX_UPLOAD_BYTES, or an upload of the allowed size is never accepted',
    ]);
  }
  const perKeyBytes = e.UPLOAD_BYTES_PER_KEY_MAX;
  if (perKeyBytes !== undefined && (perKeyBytes < e.MAX_UPLOAD_BYTES || perKeyBytes > e.JOB_DIRS_MAX_BYTES)) {
    throw new ConfigError([
      'UPLOAD_BYTES_PER_KEY_MAX: must be at least MAX_UPLOAD_BYTES (or an upload of the allowed size is never accepted) and at most JOB_DIRS_MAX_BYTES',
    ]);
  }
  const apiKeys = apiKeysOf(e.API_KEYS, e.API_KEYS_FILE);
  if (apiKeys.issues.length > 0) throw new ConfigError(apiKeys.issues);
  if (e.METRICS_TOKEN !== undefined && !isBearerText(e.METRICS_TOKEN)) {
    // A token with a space or a control character in it can never be sent: /metrics would refuse everyone.
    throw new ConfigError(['METRICS_TOKEN: must be printable ASCII without spaces']);
  }
  if (e.METRICS_TOKEN !== undefined && apiKeys.keys.some((k) => k.key === e.METRICS_TOKEN)) {
    // The token is the operator's credential (/health's details, /metrics): a tenant holding it would read them.
    throw new ConfigError(['METRICS_TOKEN: must differ from every API key']);
  }
  const { backends, model, issues } = backendsFromEnv(e, env);
  if (issues.length > 0) throw new ConfigError(issues);
  const provider = backends.find((b) => b.models.some((m) => m.id === model))?.engine ?? 'local';
  if (e.ROLE !== 'all' && !e.REDIS_URL) throw new ConfigError([`ROLE: ${e.ROLE} needs REDIS_URL (scale-out mode)`]);
  const { objectStore, issues: storageIssues } = objectStoreConfig(e);
  if (storageIssues.length > 0) throw new ConfigError(storageIssues);
  const trustProxy = trustedProxies(e.TRUST_PROXY);
  const allowPrivate = e.WEBHOOK_ALLOW_PRIVATE === 'true' || e.WEBHOOK_ALLOW_PRIVATE === '1';
  const webhookPorts = callbackPorts(e.WEBHOOK_PORTS, allowPrivate);
  if (webhookPorts.issues.length > 0) throw new ConfigError(webhookPorts.issues);
  if (trustProxy.issues.length > 0) throw new ConfigError(trustProxy.issues);
  if (e.DATABASE_URL !== undefined && !isPostgresUrl(e.DATABASE_URL)) {
    // The value itself may hold a password: only its shape is named.
    throw new ConfigError(['DATABASE_URL: must be a postgres:// or postgresql:// URL with a host']);
  }
  const set = chunkingSet(e);
  const chunking = engineDefaults(provider, set);
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    provider,
    openai: { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL },
    model,
    backends,
    concurrency: chunking.concurrency,
    maxInFlight: e.MAX_IN_FLIGHT,
    rateLimit: { rpm: e.RATE_LIMIT_RPM, burst: e.RATE_LIMIT_BURST },
    chunkSeconds: chunking.chunkSeconds,
    chunkOverlapSeconds: chunking.overlapSeconds,
    chunking: {
      engine: provider,
      set,
      fromEngine: (['chunkSeconds', 'overlapSeconds', 'concurrency'] as const).filter((k) => set[k] === undefined),
    },
    chunkMaxAttempts: e.CHUNK_MAX_ATTEMPTS,
    maxFailedChunkRatio: e.MAX_FAILED_CHUNK_RATIO,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxDurationS: e.MAX_DURATION_S,
    maxConcurrentJobs: e.MAX_CONCURRENT_JOBS,
    apiKeys: apiKeys.keys,
    openModeClients: e.OPEN_MODE_CLIENTS,
    authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,
    uploadRateLimitPerMinute: e.UPLOAD_RATE_LIMIT_PER_MINUTE,
    uploadsPerKeyMax: e.UPLOADS_PER_KEY_MAX,
    // Half the pool: one client cannot lock the others out, and still gets in with an upload of the allowed size.
    uploadBytesPerKeyMax: perKeyBytes ?? Math.max(e.MAX_UPLOAD_BYTES, Math.floor(e.JOB_DIRS_MAX_BYTES / 2)),
    // Half the pool again where there are other keys: an accepted job keeps its directory until it ends, so one
    // key's jobs cannot take them all. A service with one key has no one to keep out: the pool is its limit.
    jobsPerKeyMax:
      e.JOBS_PER_KEY_MAX ?? (apiKeys.keys.length > 1 ? Math.max(1, Math.floor(e.JOB_DIRS_MAX / 2)) : e.JOB_DIRS_MAX),
    uploadPace: {
      minBytesPerS: e.UPLOAD_MIN_BYTES_PER_S,
      windowMs: e.UPLOAD_RATE_WINDOW_MS,
      maxGapMs: e.UPLOAD_MAX_GAP_MS,
    },
    redisUrl: e.REDIS_URL,
    trustProxy: trustProxy.proxies,
    databaseUrl: e.DATABASE_URL,
    scale: {
      role: e.ROLE,
      prefix: e.REDIS_PREFIX,
      lockMs: e.WORKER_LOCK_MS,
      stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
    },
    objectStore,
    logLevel: e.LOG_LEVEL,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    ffmpegTimeoutS: e.FFMPEG_TIMEOUT_S,
    probeTimeoutS: e.PROBE_TIMEOUT_S,
    retry: {
      baseDelayMs: e.RETRY_BASE_DELAY_MS,
      maxDelayMs: e.RETRY_MAX_DELAY_MS,
      chunkDeadlineMs: e.CHUNK_DEADLINE_S * 1000,
    },
    circuit: { failureThreshold: e.CIRCUIT_FAILURE_THRESHOLD, coolDownMs: e.CIRCUIT_COOL_DOWN_MS },
    pricePerMinuteJson: e.PRICE_PER_MINUTE_JSON,
    maxJobCostUsd: e.MAX_JOB_COST_USD ?? null,
    pocketsphinxModelDir: e.POCKETSPHINX_MODEL_DIR,
    pressure: {
      thresholds: {
        diskFreeElevatedBytes: e.PRESSURE_DISK_FREE_ELEVATED_BYTES,
        diskFreeCriticalBytes: e.PRESSURE_DISK_FREE_CRITICAL_BYTES,
        rssElevatedBytes: e.PRESSURE_RSS_ELEVATED_BYTES,
        rssCriticalBytes: e.PRESSURE_RSS_CRITICAL_BYTES,
        heapElevatedRatio: e.PRESSURE_HEAP_ELEVATED_RATIO,
        heapCriticalRatio: e.PRESSURE_HEAP_CRITICAL_RATIO,
        systemFreeElevatedBytes: e.PRESSURE_SYSTEM_FREE_ELEVATED_BYTES,
        systemFreeCriticalBytes: e.PRESSURE_SYSTEM_FREE_CRITICAL_BYTES,
      },
      eventLoopDelayMs: e.PRESSURE_EVENT_LOOP_DELAY_MS,
      sampleIntervalMs: e.PRESSURE_SAMPLE_MS,
      retryAfterS: e.PRESSURE_RETRY_AFTER_S,
      diskFullMaxWaitMs: e.DISK_FULL_MAX_WAIT_S * 1000,
    },
    retention: {
      jobsMs: e.RETENTION_HOURS * 3_600_000,
      uploadsMs: e.UPLOAD_RETENTION_HOURS * 3_600_000,
      sweepIntervalMs: e.CLEANUP_INTERVAL_S * 1000,
    },
    jobDirs: { maxLeases: e.JOB_DIRS_MAX, maxBytes: e.JOB_DIRS_MAX_BYTES },
    metricsToken: e.METRICS_TOKEN,
    webhooks: {
      secret: e.WEBHOOK_SECRET,
      allowPrivate,
      ports: webhookPorts.ports,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: e.WEBHOOK_RETRY_MAX_MS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
    },
    events: {
      streamsPerKeyMax: e.EVENT_STREAMS_PER_KEY_MAX,
      streamsMax: e.EVENT_STREAMS_MAX,
      maxStreamMs: e.EVENT_STREAM_MAX_S * 1000,
      pollMs: e.EVENT_POLL_MS,
      heartbeatMs: e.EVENT_HEARTBEAT_S * 1000,
    },
  };
}

/** The chunk settings the env sets (an unset one is left to the engine's default). */
function chunkingSet(e: ParsedEnv): Partial<EngineDefaults> {
  const set: Partial<EngineDefaults> = {};
  if (e.CHUNK_SECONDS !== undefined) set.chunkSeconds = e.CHUNK_SECONDS;
  if (e.CHUNK_OVERLAP_SECONDS !== undefined) set.overlapSeconds = e.CHUNK_OVERLAP_SECONDS;
  if (e.TRANSCRIBE_CONCURRENCY !== undefined) set.concurrency = e.TRANSCRIBE_CONCURRENCY;
  return set;
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '';
  } catch {
    return false;
  }
}
