import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { z as Zod } from 'zod';
import type { BackendSpec } from './transcribe/backends-config.ts';
import { z } from './resources/env-schema.ts';
import { backendsFromEnv } from './transcribe/backends-env.ts';
import type { EngineDefaults } from './transcribe/engine.ts';
import { engineDefaults, PROVIDER_NAMES, type ProviderName } from './transcribe/providers/index.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const intFrom = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const numFrom = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().min(min).max(max).default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** Every env name below has a row in docs/configuration.md (test/unit/docs.test.ts checks it). */
export const envSchema = z.object({
  HOST: z.string().default('0.0.0.0'),
  PORT: intFrom(3000, 0, 65535),
  DATA_DIR: z.string().default('./data'),
  TRANSCRIBE_PROVIDER: z.enum(PROVIDER_NAMES).optional(),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  TRANSCRIBE_MODEL: optionalString,
  // Several backends and their models (docs/configuration.md#backends); unset: the one TRANSCRIBE_PROVIDER names.
  BACKENDS_FILE: optionalString,
  BACKENDS_JSON: optionalString,
  // Unset: the engine's own default (engineDefaults), as are CHUNK_SECONDS and CHUNK_OVERLAP_SECONDS.
  TRANSCRIBE_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  RATE_LIMIT_RPM: numFrom(20, 0.1, 1_000_000),
  RATE_LIMIT_BURST: intFrom(20, 1, 1_000_000),
  CHUNK_SECONDS: z.coerce
    .number()
    .min(1)
    .max(24 * 3600)
    .optional(),
  CHUNK_OVERLAP_SECONDS: z.coerce.number().min(0).max(60).optional(),
  MAX_UPLOAD_BYTES: intFrom(2 * GiB, 1),
  MAX_DURATION_S: numFrom(6 * 3600, 1),
  API_KEYS: optionalString,
  API_KEYS_FILE: optionalString,
  UPLOAD_RATE_LIMIT_PER_MINUTE: intFrom(60, 0, 1_000_000),
  UPLOADS_PER_KEY_MAX: intFrom(4, 1, 100_000),
  // Default: half of JOB_DIRS_MAX_BYTES (at least MAX_UPLOAD_BYTES), worked out in loadConfig.
  UPLOAD_BYTES_PER_KEY_MAX: z.coerce.number().int().min(1).optional(),
  UPLOAD_MIN_BYTES_PER_S: intFrom(16 * 1024, 0),
  UPLOAD_RATE_WINDOW_MS: intFrom(30_000, 100, 3_600_000),
  UPLOAD_MAX_GAP_MS: intFrom(30_000, 0, 3_600_000),
  REDIS_URL: optionalString,
  DATABASE_URL: optionalString,
  // The reverse proxies whose X-Forwarded-For is believed: addresses and CIDR ranges, comma-separated. Unset: none.
  TRUST_PROXY: optionalString,
  ROLE: z.enum(['api', 'worker', 'all']).default('all'),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('chunkscribe'),
  WORKER_LOCK_MS: intFrom(30_000, 1_000, 3_600_000),
  WORKER_STALLED_INTERVAL_MS: intFrom(30_000, 500, 3_600_000),
  STORAGE_URL: optionalString,
  S3_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_FORCE_PATH_STYLE: z.enum(['true', 'false', '1', '0']).default('false'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Extras beyond the contract's names.
  MAX_CONCURRENT_JOBS: intFrom(2, 1, 64),
  MAX_IN_FLIGHT: intFrom(8, 1, 256),
  CHUNK_MAX_ATTEMPTS: intFrom(5, 1, 50),
  MAX_FAILED_CHUNK_RATIO: numFrom(0.1, 0, 1),
  REQUEST_TIMEOUT_MS: intFrom(3_600_000, 1_000),
  CONNECTION_TIMEOUT_MS: intFrom(60_000, 1_000),
  SHUTDOWN_TIMEOUT_MS: intFrom(30_000, 100),
  FFMPEG_TIMEOUT_S: intFrom(3600 * 6, 1),
  PROBE_TIMEOUT_S: intFrom(30, 1),
  RETRY_BASE_DELAY_MS: intFrom(1_000, 1),
  RETRY_MAX_DELAY_MS: intFrom(60_000, 1),
  CHUNK_DEADLINE_S: intFrom(1_800, 1),
  CIRCUIT_FAILURE_THRESHOLD: intFrom(5, 1, 1_000),
  CIRCUIT_COOL_DOWN_MS: intFrom(30_000, 1, 3_600_000),
  PRICE_PER_MINUTE_JSON: optionalString,
  MAX_JOB_COST_USD: z.coerce.number().positive().optional(),
  POCKETSPHINX_MODEL_DIR: z.string().default('/usr/share/pocketsphinx/model/en-us'),
  PRESSURE_DISK_FREE_ELEVATED_BYTES: intFrom(2 * GiB, 0),
  PRESSURE_DISK_FREE_CRITICAL_BYTES: intFrom(512 * MiB, 0),
  PRESSURE_RSS_ELEVATED_BYTES: intFrom(1.5 * GiB, 1),
  PRESSURE_RSS_CRITICAL_BYTES: intFrom(3 * GiB, 1),
  PRESSURE_HEAP_ELEVATED_RATIO: numFrom(0.85, 0.01, 1),
  PRESSURE_HEAP_CRITICAL_RATIO: numFrom(0.95, 0.01, 1),
  PRESSURE_SYSTEM_FREE_ELEVATED_BYTES: intFrom(512 * MiB, 0),
  PRESSURE_SYSTEM_FREE_CRITICAL_BYTES: intFrom(256 * MiB, 0),
  PRESSURE_EVENT_LOOP_DELAY_MS: intFrom(1_000, 0, 600_000),
  PRESSURE_SAMPLE_MS: intFrom(1_000, 20, 600_000),
  PRESSURE_RETRY_AFTER_S: intFrom(30, 1, 86_400),
  DISK_FULL_MAX_WAIT_S: intFrom(1_800, 1, 7 * 86_400),
  RETENTION_HOURS: numFrom(168, 0.001, 24 * 3650),
  UPLOAD_RETENTION_HOURS: numFrom(0, 0, 24 * 3650),
  CLEANUP_INTERVAL_S: intFrom(600, 1, 86_400),
  JOB_DIRS_MAX: intFrom(16, 1, 100_000),
  JOB_DIRS_MAX_BYTES: intFrom(8 * GiB, 1),
  // Applied by src/server.ts before anything else loads; validated here so that a typo stops the start.
  GC_YOUNG_GENERATION: z.enum(['fixed', 'grow']).default('fixed'),
  METRICS_TOKEN: optionalString,
  // Standard Webhooks secret: "whsec_" then base64 of 24 to 64 random bytes.
  WEBHOOK_SECRET: optionalString.pipe(
    z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/, 'must be "whsec_" followed by base64 of 24 to 64 random bytes')
      .optional(),
  ),
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false', '1', '0']).default('false'),
  WEBHOOK_MAX_ATTEMPTS: intFrom(8, 1, 50),
  WEBHOOK_RETRY_BASE_MS: intFrom(10_000, 1, 3_600_000),
  WEBHOOK_RETRY_MAX_MS: intFrom(3_600_000, 1, 86_400_000),
  WEBHOOK_TIMEOUT_MS: intFrom(10_000, 100, 300_000),
  EVENT_STREAMS_PER_KEY_MAX: intFrom(8, 1, 10_000),
  EVENT_STREAMS_MAX: intFrom(256, 1, 100_000),
  EVENT_STREAM_MAX_S: intFrom(3_600, 1, 86_400),
  EVENT_POLL_MS: intFrom(1_000, 20, 60_000),
  EVENT_HEARTBEAT_S: intFrom(15, 1, 3_600),
});

/** Pairs whose critical threshold must lie beyond the elevated one, named as the operator wrote them. */
const THRESHOLD_PAIRS = [
  ['PRESSURE_DISK_FREE_ELEVATED_BYTES', 'PRESSURE_DISK_FREE_CRITICAL_BYTES', 'lower'],
  ['PRESSURE_RSS_ELEVATED_BYTES', 'PRESSURE_RSS_CRITICAL_BYTES', 'higher'],
  ['PRESSURE_HEAP_ELEVATED_RATIO', 'PRESSURE_HEAP_CRITICAL_RATIO', 'higher'],
  ['PRESSURE_SYSTEM_FREE_ELEVATED_BYTES', 'PRESSURE_SYSTEM_FREE_CRITICAL_BYTES', 'lower'],
] as const;

export type Env = Zod.input<typeof envSchema>;

/** The system monitor's pressure thresholds (src/resources/system-monitor.ts), set from the env below. */
export interface SystemThresholds {
  /** Free bytes under dataDir below which disk is elevated. @default 2 GiB */
  diskFreeElevatedBytes: number;
  /** Free bytes under dataDir below which disk is critical (also the reserve no job may eat into). @default 512 MiB */
  diskFreeCriticalBytes: number;
  /** Process RSS above which memory is elevated. @default 1.5 GiB */
  rssElevatedBytes: number;
  /** @default 3 GiB */
  rssCriticalBytes: number;
  /** V8 heap used / heap size limit above which memory is elevated. @default 0.85 */
  heapElevatedRatio: number;
  /** @default 0.95 */
  heapCriticalRatio: number;
  /** Memory still available to the process (cgroup-aware) below which memory is elevated. @default 512 MiB */
  systemFreeElevatedBytes: number;
  /** @default 256 MiB */
  systemFreeCriticalBytes: number;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** The engine of the default model's backend. */
  provider: ProviderName;
  openai: { apiKey: string | undefined; baseURL: string | undefined };
  /** The model a job gets when it names none. */
  model: string;
  /** Every backend with its models and limits: declared (BACKENDS_FILE/BACKENDS_JSON), or the one of the env. */
  backends: BackendSpec[];
  concurrency: number;
  maxInFlight: number;
  rateLimit: { rpm: number; burst: number };
  chunkSeconds: number;
  chunkOverlapSeconds: number;
  /**
   * Where concurrency, chunkSeconds and chunkOverlapSeconds came from: `set` holds what the env set, and the
   * rest (`fromEngine`) are the defaults of `engine` (another engine's jobs resolve theirs with engineDefaults).
   */
  chunking: { engine: ProviderName; set: Partial<EngineDefaults>; fromEngine: Array<keyof EngineDefaults> };
  chunkMaxAttempts: number;
  maxFailedChunkRatio: number;
  maxUploadBytes: number;
  maxDurationS: number;
  maxConcurrentJobs: number;
  /** Bearer keys with their names (API_KEYS and API_KEYS_FILE); empty means open mode. */
  apiKeys: ApiKey[];
  /** Uploads a key (or, in open mode, a client address) may start per minute; 0 turns the limit off. */
  uploadRateLimitPerMinute: number;
  /** Uploads one key (or, in open mode, one client address) may have in progress at once, per process. */
  uploadsPerKeyMax: number;
  /** Upload bytes one key (or one client address) may have reserved by its uploads in progress, per process. */
  uploadBytesPerKeyMax: number;
  /** How fast an upload's body must keep arriving (0 turns a check off); slower: 408 UPLOAD_TOO_SLOW. */
  uploadPace: { minBytesPerS: number; windowMs: number; maxGapMs: number };
  redisUrl: string | undefined;
  /**
   * Addresses and ranges of the reverse proxies in front (TRUST_PROXY), as Fastify's `trustProxy` takes them: from
   * one of them, the client address is read from X-Forwarded-For; from anyone else the header is ignored. Empty:
   * no proxy is trusted, the client address is the connection's.
   */
  trustProxy: string[];
  /** The job store on PostgreSQL (postgres:// URL); unset: SQLite in DATA_DIR. */
  databaseUrl: string | undefined;
  /** Scale-out (REDIS_URL set): what this process does, and BullMQ's lock and stalled-check periods. */
  scale: { role: 'api' | 'worker' | 'all'; prefix: string; lockMs: number; stalledIntervalMs: number };
  /** Where uploads are kept: null = local disk (DATA_DIR); else an S3 bucket (STORAGE_URL=s3://bucket/prefix). */
  objectStore: ObjectStoreConfig | null;
  logLevel: string;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  shutdownTimeoutMs: number;
  ffmpegTimeoutS: number;
  probeTimeoutS: number;
  retry: { baseDelayMs: number; maxDelayMs: number; chunkDeadlineMs: number };
  /** Consecutive provider faults that open its circuit, and the wait before a probe. */
  circuit: { failureThreshold: number; coolDownMs: number };
  pricePerMinuteJson: string | undefined;
  maxJobCostUsd: number | null;
  pocketsphinxModelDir: string;
  pressure: {
    thresholds: SystemThresholds;
    /** Mean event-loop delay above which uploads are refused; 0 turns the check off. */
    eventLoopDelayMs: number;
    sampleIntervalMs: number;
    retryAfterS: number;
    /** How long a job waits for space on a full data volume before it fails with INSUFFICIENT_STORAGE. */
    diskFullMaxWaitMs: number;
  };
  retention: {
    /** Transcripts and job rows are purged this long after the job ended. */
    jobsMs: number;
    /** An ended job's upload is kept this long (0: deleted when the job ends). */
    uploadsMs: number;
    sweepIntervalMs: number;
  };
  /** Bounds of the job directory pool: directories leased at once, upload bytes they hold. */
  jobDirs: { maxLeases: number; maxBytes: number };
  /** Bearer token /metrics asks for; unset leaves /metrics open. */
  metricsToken: string | undefined;
  webhooks: {
    /** Signing secret; unset refuses `callback_url` at upload. */
    secret: string | undefined;
    /** Deliver to loopback, private, link-local and unique-local addresses too. */
    allowPrivate: boolean;
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
    timeoutMs: number;
  };
  /** Live job events (GET /v1/jobs/{id}/events): open streams per key and per process, lifetime, pace. */
  events: {
    streamsPerKeyMax: number;
    streamsMax: number;
    /** A stream is closed after this long; the client reconnects with Last-Event-ID. */
    maxStreamMs: number;
    /** How often a stream reads its job's rows. */
    pollMs: number;
    /** A comment line this often, so proxies and the socket timeout (CONNECTION_TIMEOUT_MS) keep a quiet stream open. */
    heartbeatMs: number;
  };
}

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
  const apiKeys = parseApiKeys(e.API_KEYS, e.API_KEYS_FILE === undefined ? undefined : readKeysFile(e.API_KEYS_FILE));
  if (apiKeys.issues.length > 0) throw new ConfigError(apiKeys.issues);
  const { backends, model, issues } = backendsFromEnv(e, env);
  if (issues.length > 0) throw new ConfigError(issues);
  const provider = backends.find((b) => b.models.some((m) => m.id === model))?.engine ?? 'local';
  if (e.ROLE !== 'all' && !e.REDIS_URL) throw new ConfigError([`ROLE: ${e.ROLE} needs REDIS_URL (scale-out mode)`]);
  const objectStore = objectStoreConfig(e);
  const trustProxy = trustedProxies(e.TRUST_PROXY);
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
    uploadRateLimitPerMinute: e.UPLOAD_RATE_LIMIT_PER_MINUTE,
    uploadsPerKeyMax: e.UPLOADS_PER_KEY_MAX,
    // Half the pool: one client cannot lock the others out, and still gets in with an upload of the allowed size.
    uploadBytesPerKeyMax: perKeyBytes ?? Math.max(e.MAX_UPLOAD_BYTES, Math.floor(e.JOB_DIRS_MAX_BYTES / 2)),
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
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE === 'true' || e.WEBHOOK_ALLOW_PRIVATE === '1',
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

/** An S3-compatible bucket for the uploads; credentials come from the AWS SDK's default chain, never from here. */
export interface ObjectStoreConfig {
  bucket: string;
  /** Key prefix, '' or ending in '/': every object of the service is under it. */
  prefix: string;
  /** Unset: AWS. Set for MinIO, Ceph, R2, GCS interop (http or https). */
  endpoint: string | undefined;
  region: string;
  /** Bucket in the path (http://host/bucket/key), not the host name: what most non-AWS stores need. */
  forcePathStyle: boolean;
}

/** S3 bucket names: 3 to 63 lower-case letters, digits, dots and hyphens (the rules every S3 store shares). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A key prefix: path segments of safe characters, no empty or dot segments. */
const KEY_PREFIX = /^(?:[A-Za-z0-9_.-]+\/)*$/;

function objectStoreConfig(e: Zod.output<typeof envSchema>): ObjectStoreConfig | null {
  if (e.STORAGE_URL === undefined) return null;
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(e.STORAGE_URL);
  const bucket = m?.[1] ?? '';
  const rawPrefix = m?.[2] ?? '';
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  if (!m || !BUCKET_NAME.test(bucket) || !KEY_PREFIX.test(prefix) || /(^|\/)\.{1,2}\//.test(prefix)) {
    throw new ConfigError([
      'STORAGE_URL: must be s3://bucket or s3://bucket/prefix (bucket: 3 to 63 of a-z 0-9 . -; prefix: letters, digits, _ . - and /)',
    ]);
  }
  return {
    bucket,
    prefix,
    endpoint: e.S3_ENDPOINT,
    region: e.S3_REGION,
    forcePathStyle: e.S3_FORCE_PATH_STYLE === 'true' || e.S3_FORCE_PATH_STYLE === '1',
  };
}

/** The chunk settings the env sets (an unset one is left to the engine's default). */
function chunkingSet(e: Zod.output<typeof envSchema>): Partial<EngineDefaults> {
  const set: Partial<EngineDefaults> = {};
  if (e.CHUNK_SECONDS !== undefined) set.chunkSeconds = e.CHUNK_SECONDS;
  if (e.CHUNK_OVERLAP_SECONDS !== undefined) set.overlapSeconds = e.CHUNK_OVERLAP_SECONDS;
  if (e.TRANSCRIBE_CONCURRENCY !== undefined) set.concurrency = e.TRANSCRIBE_CONCURRENCY;
  return set;
}

/** A bearer key and the name jobs and logs know it by (the key itself is never stored or logged). */
export interface ApiKey {
  name: string;
  key: string;
}

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const KEY_TEXT = /^[\x21-\x7e]+$/;

/**
 * The keys of API_KEYS (comma-separated, named `env-1`, `env-2`, ... by position) and of API_KEYS_FILE (one
 * `name:key` a line; blank lines and lines starting with `#` are skipped). Returns the keys, or the problems
 * found, each naming the variable and line without quoting any key.
 */
export function parseApiKeys(
  envKeys: string | undefined,
  file: { path: string; text: string } | undefined,
): { keys: ApiKey[]; issues: string[] } {
  const keys: ApiKey[] = [];
  const issues: string[] = [];
  (envKeys ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .forEach((key, i) => keys.push({ name: `env-${i + 1}`, key }));

  if (file) {
    file.text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const at = `API_KEYS_FILE: ${file.path} line ${i + 1}`;
      const colon = line.indexOf(':');
      if (colon === -1) {
        issues.push(`${at}: expected "name:key"`);
        return;
      }
      const name = line.slice(0, colon).trim();
      const key = line.slice(colon + 1).trim();
      if (!KEY_NAME.test(name)) issues.push(`${at}: the name must be 1 to 64 letters, digits, "_", "." or "-"`);
      else if (!KEY_TEXT.test(key)) issues.push(`${at}: the key must be printable ASCII without spaces`);
      else keys.push({ name, key });
    });
  }

  const names = new Set<string>();
  const secrets = new Set<string>();
  for (const { name, key } of keys) {
    if (names.has(name)) issues.push(`API_KEYS_FILE: the name "${name}" is used twice`);
    if (secrets.has(key)) issues.push(`API_KEYS_FILE: the key named "${name}" is also given another name`);
    names.add(name);
    secrets.add(key);
  }
  return { keys, issues };
}

function readKeysFile(file: string): { path: string; text: string } {
  try {
    return { path: file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    throw new ConfigError([
      `API_KEYS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
}

/** The config as it may be logged: secrets replaced by whether they are set, URLs without their credentials. */
export function redactConfig(config: Config): Record<string, unknown> {
  const redacted = {
    ...config,
    openai: { apiKey: config.openai.apiKey ? '(set)' : '(unset)', baseURL: config.openai.baseURL ?? '(sdk default)' },
    backends: config.backends.map((b) => ({
      ...b,
      apiKey: b.apiKey ? `(set${b.apiKeyEnv ? ` from ${b.apiKeyEnv}` : ''})` : '(unset)',
      baseURL: b.baseURL ?? '(sdk default)',
    })),
    apiKeys: config.apiKeys.map((k) => k.name),
    redisUrl: config.redisUrl ?? '(unset)',
    databaseUrl: config.databaseUrl ?? '(unset)',
    metricsToken: config.metricsToken ? '(set)' : '(unset)',
    webhooks: { ...config.webhooks, secret: config.webhooks.secret ? '(set)' : '(unset)' },
  };
  // Every URL setting, present or future: OPENAI_BASE_URL, REDIS_URL and DATABASE_URL may carry a password or a key.
  return redactUrls(redacted) as Record<string, unknown>;
}

/** Names proxy-addr (Fastify's trustProxy) knows for the private ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const MAX_TRUSTED_PROXIES = 100;

/**
 * TRUST_PROXY's entries: an address, a CIDR range or a named range each. Never everyone (`true`, `*`, a /0 range):
 * any client could then say who it is, and escape its per-address limits with a header.
 */
function trustedProxies(value: string | undefined): { proxies: string[]; issues: string[] } {
  const proxies = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (proxies.length > MAX_TRUSTED_PROXIES)
    return { proxies: [], issues: [`TRUST_PROXY: at most ${MAX_TRUSTED_PROXIES} entries`] };
  const issues = proxies
    .filter((p) => !isProxyRange(p))
    .map(
      (p) =>
        `TRUST_PROXY: ${JSON.stringify(p)} is not an IP address, a CIDR range (other than /0, which is everyone) or one of ${[...PROXY_RANGE_NAMES].join(', ')}`,
    );
  return { proxies, issues };
}

function isProxyRange(entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128);
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

function redactUrls(value: unknown): unknown {
  if (typeof value === 'string') return ABSOLUTE_URL.test(value) ? redactUrl(value) : value;
  if (Array.isArray(value)) return value.map(redactUrls);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactUrls(v)]));
  return value;
}

/**
 * A URL as it may be shown: scheme, host, port and path kept (what an operator needs to recognise it),
 * user-info and every query value replaced by `***`, a fragment dropped. Not a URL at all: only that it is set.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return '(set, not a URL)';
  }
  const userInfo = url.username !== '' || url.password !== '' ? '***@' : '';
  const query = [...url.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${url.protocol}//${userInfo}${url.host}${url.pathname}${query === '' ? '' : `?${query}`}`;
}
