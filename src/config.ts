import path from 'node:path';
import { z } from 'zod';
import type { SystemThresholds } from './resources/system-monitor.ts';

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

/** The env names below are part of the contract (shared/design/architecture.md); extras are documented in the README. */
const envSchema = z.object({
  HOST: z.string().default('0.0.0.0'),
  PORT: intFrom(3000, 0, 65535),
  DATA_DIR: z.string().default('./data'),
  TRANSCRIBE_PROVIDER: z.enum(['openai', 'local']).optional(),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  TRANSCRIBE_MODEL: optionalString,
  TRANSCRIBE_CONCURRENCY: intFrom(3, 1, 64),
  RATE_LIMIT_RPM: numFrom(20, 0.1, 1_000_000),
  RATE_LIMIT_BURST: intFrom(20, 1, 1_000_000),
  CHUNK_SECONDS: numFrom(600, 1, 24 * 3600),
  CHUNK_OVERLAP_SECONDS: numFrom(1, 0, 60),
  MAX_UPLOAD_BYTES: intFrom(2 * GiB, 1),
  MAX_DURATION_S: numFrom(6 * 3600, 1),
  API_KEYS: optionalString,
  REDIS_URL: optionalString,
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
  RETENTION_HOURS: numFrom(168, 0.001, 24 * 3650),
  UPLOAD_RETENTION_HOURS: numFrom(0, 0, 24 * 3650),
  CLEANUP_INTERVAL_S: intFrom(600, 1, 86_400),
});

/** Pairs whose critical threshold must lie beyond the elevated one, named as the operator wrote them. */
const THRESHOLD_PAIRS = [
  ['PRESSURE_DISK_FREE_ELEVATED_BYTES', 'PRESSURE_DISK_FREE_CRITICAL_BYTES', 'lower'],
  ['PRESSURE_RSS_ELEVATED_BYTES', 'PRESSURE_RSS_CRITICAL_BYTES', 'higher'],
  ['PRESSURE_HEAP_ELEVATED_RATIO', 'PRESSURE_HEAP_CRITICAL_RATIO', 'higher'],
  ['PRESSURE_SYSTEM_FREE_ELEVATED_BYTES', 'PRESSURE_SYSTEM_FREE_CRITICAL_BYTES', 'lower'],
] as const;

export type Env = z.input<typeof envSchema>;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  provider: 'openai' | 'local';
  openai: { apiKey: string | undefined; baseURL: string | undefined };
  model: string;
  concurrency: number;
  maxInFlight: number;
  rateLimit: { rpm: number; burst: number };
  chunkSeconds: number;
  chunkOverlapSeconds: number;
  chunkMaxAttempts: number;
  maxFailedChunkRatio: number;
  maxUploadBytes: number;
  maxDurationS: number;
  maxConcurrentJobs: number;
  apiKeys: string[];
  redisUrl: string | undefined;
  logLevel: string;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  shutdownTimeoutMs: number;
  ffmpegTimeoutS: number;
  probeTimeoutS: number;
  retry: { baseDelayMs: number; maxDelayMs: number; chunkDeadlineMs: number };
  pricePerMinuteJson: string | undefined;
  maxJobCostUsd: number | null;
  pocketsphinxModelDir: string;
  pressure: {
    thresholds: SystemThresholds;
    /** Mean event-loop delay above which uploads are refused; 0 turns the check off. */
    eventLoopDelayMs: number;
    sampleIntervalMs: number;
    retryAfterS: number;
  };
  retention: {
    /** Transcripts and job rows are purged this long after the job ended. */
    jobsMs: number;
    /** An ended job's upload is kept this long (0: deleted when the job ends). */
    uploadsMs: number;
    sweepIntervalMs: number;
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

export const LOCAL_MODEL = 'pocketsphinx-en-us';

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
  const provider = e.TRANSCRIBE_PROVIDER ?? (e.OPENAI_API_KEY ? 'openai' : 'local');
  if (provider === 'openai' && !e.OPENAI_API_KEY) {
    throw new ConfigError(['OPENAI_API_KEY: required when TRANSCRIBE_PROVIDER=openai']);
  }
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    provider,
    openai: { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL },
    model: e.TRANSCRIBE_MODEL ?? (provider === 'local' ? LOCAL_MODEL : 'whisper-1'),
    concurrency: e.TRANSCRIBE_CONCURRENCY,
    maxInFlight: e.MAX_IN_FLIGHT,
    rateLimit: { rpm: e.RATE_LIMIT_RPM, burst: e.RATE_LIMIT_BURST },
    chunkSeconds: e.CHUNK_SECONDS,
    chunkOverlapSeconds: e.CHUNK_OVERLAP_SECONDS,
    chunkMaxAttempts: e.CHUNK_MAX_ATTEMPTS,
    maxFailedChunkRatio: e.MAX_FAILED_CHUNK_RATIO,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    maxDurationS: e.MAX_DURATION_S,
    maxConcurrentJobs: e.MAX_CONCURRENT_JOBS,
    apiKeys: (e.API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k !== ''),
    redisUrl: e.REDIS_URL,
    logLevel: e.LOG_LEVEL,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    ffmpegTimeoutS: e.FFMPEG_TIMEOUT_S,
    probeTimeoutS: e.PROBE_TIMEOUT_S,
    retry: { baseDelayMs: e.RETRY_BASE_DELAY_MS, maxDelayMs: e.RETRY_MAX_DELAY_MS, chunkDeadlineMs: e.CHUNK_DEADLINE_S * 1000 },
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
    },
    retention: {
      jobsMs: e.RETENTION_HOURS * 3_600_000,
      uploadsMs: e.UPLOAD_RETENTION_HOURS * 3_600_000,
      sweepIntervalMs: e.CLEANUP_INTERVAL_S * 1000,
    },
  };
}

/** The config as it may be logged: secrets replaced by whether they are set. */
export function redactConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    openai: { apiKey: config.openai.apiKey ? '(set)' : '(unset)', baseURL: config.openai.baseURL ?? '(sdk default)' },
    apiKeys: `${config.apiKeys.length} key(s)`,
    redisUrl: config.redisUrl ? '(set)' : '(unset)',
  };
}
