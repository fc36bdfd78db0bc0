import type { BackendSpec } from '../transcribe/backends-config.ts';
import type { EngineDefaults } from '../transcribe/engine.ts';
import type { ProviderName } from '../transcribe/providers/index.ts';
import type { ApiKey } from './api-keys.ts';
import type { CallbackPorts } from '../validate/callback-url.ts';
import type { ObjectStoreConfig } from './object-store.ts';

/* The typed configuration every part is given its slice of (made once by loadConfig in src/config.ts). */

/** The system monitor's pressure thresholds (src/resources/system-monitor.ts), set from the PRESSURE_* env. */
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
  /**
   * Whom open mode serves (OPEN_MODE_CLIENTS): `loopback`, clients whose address (request.ip) is on this machine's
   * loopback; `any`, every client. Not read with API keys, which every client needs then.
   */
  openModeClients: 'loopback' | 'any';
  /** Failed credential checks a client address may make per minute before it is locked out; 0 turns it off. */
  authFailuresPerMinute: number;
  /** Uploads a key (or, in open mode, a client address) may start per minute; 0 turns the limit off. */
  uploadRateLimitPerMinute: number;
  /** Uploads one key (or, in open mode, one client address) may have in progress at once, per process. */
  uploadsPerKeyMax: number;
  /** Upload bytes one key (or one client address) may have reserved by its uploads in progress, per process. */
  uploadBytesPerKeyMax: number;
  /** Jobs one API key may have queued or processing at once (every host's, with DATABASE_URL); open mode: no limit. */
  jobsPerKeyMax: number;
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
    /** Ports callbacks may go to (WEBHOOK_PORTS). */
    ports: CallbackPorts;
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
