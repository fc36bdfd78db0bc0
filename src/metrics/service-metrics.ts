import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobEvents } from '../jobs/events.ts';
import { isLive, JOB_STATUSES } from '../jobs/types.ts';
import { oneAtATime } from '../resources/one-at-a-time.ts';
import type { PressureLevel } from '../resources/system-monitor.ts';
import type { TranscriptionMetrics } from '../transcribe/instrument.ts';
import type { CircuitState } from '../transcribe/circuit-breaker.ts';
import type { LimiterStats } from '../transcribe/rate-limiter.ts';
import { WEBHOOK_OUTCOMES, type WebhookOutcome } from '../webhooks/dispatcher.ts';

const PRESSURE_LEVELS: Record<PressureLevel, number> = { normal: 0, elevated: 1, critical: 2 };
const JOB_END_STATUSES = JOB_STATUSES.filter((status) => !isLive(status));
const CIRCUIT_STATES: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** What the metrics read at scrape time rather than count as it happens. */
export interface MetricSources {
  jobCounts(): Promise<Record<string, number>>;
  /** Each backend's rate limiter, by backend name. */
  limiterStats(): Promise<ReadonlyArray<{ provider: string; stats: LimiterStats }>>;
  pressureLevel(): PressureLevel;
  /** The data volume as the last pressure sample saw it; null before the first sample. */
  disk(): { freeBytes: number; level: PressureLevel } | null;
  /** Each backend's circuit breaker (its snapshot's state), by backend name. */
  circuits(): ReadonlyArray<{ provider: string; state: CircuitState }>;
}

/** What chunkscribe_build_info says about the running code. */
export interface BuildInfo {
  version: string;
  nodeVersion: string;
}

export interface ServiceMetrics
  extends Pick<JobEvents, 'uploadBytes' | 'accepted' | 'uploadRefused' | 'started' | 'ended'>, TranscriptionMetrics {
  readonly registry: Registry;
  /** One webhook delivery attempt's outcome (or a delivery given up before any attempt). */
  webhookDelivery(outcome: WebhookOutcome): void;
}

/** Seconds from one stored timestamp to a later one; never negative (clocks of two processes may disagree). */
function secondsBetween(fromIso: string, to: number): number {
  return Math.max(0, (to - Date.parse(fromIso)) / 1000);
}

/**
 * Every metric the service exposes, on a registry of its own (never prom-client's global one: two services in one
 * process, as in tests, must not share counters). Gauges of state are read from their source at scrape time.
 */
export function createServiceMetrics(sources: MetricSources, build: BuildInfo): ServiceMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'chunkscribe_build_info',
    help: 'Always 1; the labels say which version runs on which Node.js.',
    labelNames: ['version', 'node_version'],
    registers,
  }).set({ version: build.version, node_version: build.nodeVersion }, 1);

  new Gauge({
    name: 'chunkscribe_jobs',
    help: 'Jobs in the store by status.',
    labelNames: ['status'],
    registers,
    async collect() {
      const counts = await sources.jobCounts();
      for (const status of JOB_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
  // One stats() call per backend and scrape feeds all three limiter gauges: the registry collects them at once.
  const readLimiters = oneAtATime(() => sources.limiterStats());
  const limiterGauge = (name: string, help: string, pick: (stats: LimiterStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['provider'],
      registers,
      async collect() {
        for (const { provider, stats } of await readLimiters()) this.set({ provider }, pick(stats));
      },
    });
  limiterGauge(
    'chunkscribe_limiter_queued',
    'Provider calls waiting for a rate-limit token or an in-flight slot, by backend.',
    (s) => s.queued,
  );
  limiterGauge('chunkscribe_limiter_running', 'Provider calls in flight, by backend.', (s) => s.running);
  limiterGauge(
    'chunkscribe_limiter_tokens',
    "Rate-limit tokens usable now, by backend (0 while a provider-requested pause holds that backend's jobs).",
    (s) => s.tokens,
  );
  new Gauge({
    name: 'chunkscribe_pressure_level',
    help: 'Memory and disk pressure: 0 normal, 1 elevated (uploads refused), 2 critical (emergency cleanup).',
    registers,
    collect() {
      this.set(PRESSURE_LEVELS[sources.pressureLevel()]);
    },
  });

  // Both read the last sample (no disk call at scrape time); nothing is set before the first one.
  new Gauge({
    name: 'chunkscribe_disk_free_bytes',
    help: 'Free bytes on the volume of DATA_DIR at the last pressure sample.',
    registers,
    collect() {
      const disk = sources.disk();
      if (disk) this.set(disk.freeBytes);
    },
  });
  new Gauge({
    name: 'chunkscribe_disk_pressure_level',
    help: 'The disk part of chunkscribe_pressure_level: 0 normal, 1 elevated (uploads refused), 2 critical (writes wait, emergency cleanup).',
    registers,
    collect() {
      const disk = sources.disk();
      if (disk) this.set(PRESSURE_LEVELS[disk.level]);
    },
  });
  new Gauge({
    name: 'chunkscribe_circuit_state',
    help: 'Provider circuit breaker: 0 closed, 1 half-open (one probe call goes), 2 open (calls held or refused).',
    labelNames: ['provider'],
    registers,
    collect() {
      for (const { provider, state } of sources.circuits()) this.set({ provider }, CIRCUIT_STATES[state]);
    },
  });

  const chunkSeconds = new Histogram({
    name: 'chunkscribe_chunk_transcription_seconds',
    help: 'Time to transcribe one chunk, limiter waits and retries included.',
    labelNames: ['provider', 'model', 'outcome'],
    buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers,
  });
  const providerRequests = new Counter({
    name: 'chunkscribe_provider_requests_total',
    help: 'Provider calls by outcome and the retry policy class of the error.',
    labelNames: ['provider', 'model', 'outcome', 'error_class'],
    registers,
  });
  const retries = new Counter({
    name: 'chunkscribe_provider_retries_total',
    help: 'Chunk attempts that failed and were scheduled again, by error class.',
    labelNames: ['provider', 'error_class'],
    registers,
  });
  const limiterWait = new Histogram({
    name: 'chunkscribe_limiter_wait_seconds',
    help: 'Time a provider call waited for a rate-limit token and an in-flight slot (calls that started).',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const webhookDeliveries = new Counter({
    name: 'chunkscribe_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, failed_attempt (retried later), failed (last attempt), refused (address not allowed), unsigned (WEBHOOK_SECRET unset).',
    labelNames: ['outcome'],
    registers,
  });
  const uploadBytes = new Counter({
    name: 'chunkscribe_upload_bytes_total',
    help: 'Bytes of uploaded files received whole (uploads refused after that included).',
    registers,
  });
  const accepted = new Counter({
    name: 'chunkscribe_jobs_accepted_total',
    help: 'Jobs accepted at upload.',
    labelNames: ['provider', 'model'],
    registers,
  });
  const refused = new Counter({
    name: 'chunkscribe_uploads_refused_total',
    help: 'POST /v1/jobs answered with an error, by error code.',
    labelNames: ['code'],
    registers,
  });
  const cost = new Counter({
    name: 'chunkscribe_estimated_cost_usd_total',
    help: 'Estimated provider cost of the accepted jobs, in USD.',
    labelNames: ['provider', 'model'],
    registers,
  });
  const ended = new Counter({
    name: 'chunkscribe_jobs_ended_total',
    help: 'Jobs that ended in this process, by status.',
    labelNames: ['status'],
    registers,
  });
  // Series that alerts count from exist at 0 from the start: increase() cannot see the first event of a series
  // that appears with it (its first sample is already 1).
  for (const status of JOB_END_STATUSES) ended.inc({ status }, 0);
  for (const outcome of WEBHOOK_OUTCOMES) webhookDeliveries.inc({ outcome }, 0);
  const jobSeconds = new Histogram({
    name: 'chunkscribe_job_duration_seconds',
    help: 'Jobs that ended in this process, from acceptance to their end, by status.',
    labelNames: ['status'],
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
    registers,
  });
  const queueWait = new Histogram({
    name: 'chunkscribe_job_queue_wait_seconds',
    help: 'Jobs started in this process, from acceptance to the start of their processing.',
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers,
  });
  const audioSeconds = new Counter({
    name: 'chunkscribe_audio_seconds_processed_total',
    help: 'Audio duration of the jobs that ended in this process, by status.',
    labelNames: ['status'],
    registers,
  });
  const audioBytes = new Counter({
    name: 'chunkscribe_audio_bytes_processed_total',
    help: 'Upload size of the jobs that ended in this process, by status.',
    labelNames: ['status'],
    registers,
  });

  return {
    registry,
    chunk({ provider, model, outcome, seconds }) {
      chunkSeconds.observe({ provider, model, outcome }, seconds);
    },
    providerRequest({ provider, model, outcome, errorClass }) {
      providerRequests.inc({ provider, model, outcome, error_class: errorClass });
    },
    retry({ provider, errorClass }) {
      retries.inc({ provider, error_class: errorClass });
    },
    limiterWait(seconds) {
      limiterWait.observe(seconds);
    },
    webhookDelivery(outcome) {
      webhookDeliveries.inc({ outcome });
    },
    uploadBytes(bytes) {
      uploadBytes.inc(bytes);
    },
    accepted(job) {
      const labels = { provider: job.estimate.provider, model: job.estimate.model };
      accepted.inc(labels);
      cost.inc(labels, job.estimate.cost_usd);
    },
    uploadRefused(code) {
      refused.inc({ code });
    },
    started(job, at) {
      queueWait.observe(secondsBetween(job.createdAt, at.getTime()));
    },
    ended(job) {
      jobSeconds.observe(
        { status: job.status },
        secondsBetween(job.createdAt, Date.parse(job.completedAt ?? job.updatedAt)),
      );
      ended.inc({ status: job.status });
      audioSeconds.inc({ status: job.status }, job.audio.duration_s);
      audioBytes.inc({ status: job.status }, job.audio.size_bytes);
    },
  };
}
