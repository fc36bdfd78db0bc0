import type { z as Zod } from 'zod';
import { z } from '../resources/env-schema.ts';
import { PROVIDER_NAMES } from '../transcribe/providers/index.ts';

/*
 * The environment the service reads: every variable, its bounds and its default (loadConfig in src/config.ts
 * turns it into the Config). scripts/env-example.ts prints .env.example from it.
 */

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
  // Who open mode (neither of the two above) serves: clients on this machine only, or everyone who reaches the port.
  OPEN_MODE_CLIENTS: z.enum(['loopback', 'any']).default('loopback'),
  UPLOAD_RATE_LIMIT_PER_MINUTE: intFrom(60, 0, 1_000_000),
  AUTH_FAILURES_PER_MINUTE: intFrom(30, 0, 1_000_000),
  UPLOADS_PER_KEY_MAX: intFrom(4, 1, 100_000),
  // Default: half of JOB_DIRS_MAX_BYTES (at least MAX_UPLOAD_BYTES), worked out in loadConfig.
  UPLOAD_BYTES_PER_KEY_MAX: z.coerce.number().int().min(1).optional(),
  // Default: half of JOB_DIRS_MAX (at least 1), worked out in loadConfig.
  JOBS_PER_KEY_MAX: z.coerce.number().int().min(1).max(1_000_000).optional(),
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
  // "any" or up to 64 ports (each 1-65535: config/webhook-ports.ts); unset: 80,443, or any with WEBHOOK_ALLOW_PRIVATE.
  WEBHOOK_PORTS: optionalString.pipe(
    z
      .string()
      .regex(
        /^(?:any|\d{1,5}(?:\s*,\s*\d{1,5}){0,63})$/,
        'must be "any" or a comma-separated list of up to 64 ports, e.g. "443" or "80,443,8443"',
      )
      .optional(),
  ),
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

export type Env = Zod.input<typeof envSchema>;
/** The environment as the schema reads it: coerced, bounded, defaulted. */
export type ParsedEnv = Zod.output<typeof envSchema>;
