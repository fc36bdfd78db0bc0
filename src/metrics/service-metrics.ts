import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobEvents } from '../jobs/events.ts';
import { JOB_STATUSES } from '../jobs/types.ts';
import type { PressureLevel } from '../resources/system-monitor.ts';
import type { TranscriptionMetrics } from '../transcribe/instrument.ts';
import type { LimiterStats } from '../transcribe/rate-limiter.ts';

const PRESSURE_LEVELS: Record<PressureLevel, number> = { normal: 0, elevated: 1, critical: 2 };

/** What the metrics read at scrape time rather than count as it happens. */
export interface MetricSources {
  jobCounts(): Record<string, number>;
  limiterStats(): Promise<LimiterStats>;
  pressureLevel(): PressureLevel;
}

export interface ServiceMetrics extends Pick<JobEvents, 'uploadBytes' | 'accepted' | 'uploadRefused' | 'ended'>, TranscriptionMetrics {
  readonly registry: Registry;
}

/**
 * Every metric the service exposes, on a registry of its own (never prom-client's global one: two services in one
 * process, as in tests, must not share counters). Gauges of state are read from their source at scrape time.
 */
export function createServiceMetrics(sources: MetricSources): ServiceMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'chunkscribe_jobs',
    help: 'Jobs in the store by status.',
    labelNames: ['status'],
    registers,
    collect() {
      const counts = sources.jobCounts();
      for (const status of JOB_STATUSES) this.set({ status }, counts[status] ?? 0);
    },
  });
  const limiterQueued = new Gauge({ name: 'chunkscribe_limiter_queued', help: 'Provider calls waiting for a rate-limit token or an in-flight slot.', registers });
  const limiterRunning = new Gauge({ name: 'chunkscribe_limiter_running', help: 'Provider calls in flight.', registers });
  new Gauge({
    name: 'chunkscribe_limiter_tokens',
    help: 'Rate-limit tokens usable now (0 while a provider-requested pause holds every job).',
    registers,
    // One stats() call feeds all three limiter gauges; the other two are set here before they are serialised.
    async collect() {
      const stats = await sources.limiterStats();
      this.set(stats.tokens);
      limiterQueued.set(stats.queued);
      limiterRunning.set(stats.running);
    },
  });
  new Gauge({
    name: 'chunkscribe_pressure_level',
    help: 'Memory and disk pressure: 0 normal, 1 elevated (uploads refused), 2 critical (emergency cleanup).',
    registers,
    collect() {
      this.set(PRESSURE_LEVELS[sources.pressureLevel()]);
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
  const uploadBytes = new Counter({ name: 'chunkscribe_upload_bytes_total', help: 'Bytes of uploaded files received whole (uploads refused after that included).', registers });
  const accepted = new Counter({ name: 'chunkscribe_jobs_accepted_total', help: 'Jobs accepted at upload.', labelNames: ['provider', 'model'], registers });
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
  const ended = new Counter({ name: 'chunkscribe_jobs_ended_total', help: 'Jobs that ended in this process, by status.', labelNames: ['status'], registers });
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
    ended(job) {
      ended.inc({ status: job.status });
      audioSeconds.inc({ status: job.status }, job.audio.duration_s);
      audioBytes.inc({ status: job.status }, job.audio.size_bytes);
    },
  };
}
