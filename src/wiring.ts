import path from 'node:path';
import type { Logger } from 'pino';
import {
  createDecodeChecker,
  createProber,
  createSilenceDetector,
  createSlicer,
  maxChunkSecondsForBytes,
  planSplits,
  type ChunkFormat,
} from './chunker/index.ts';
import type { Config } from './config.ts';
import { JobRunner } from './jobs/runner.ts';
import { JobStore } from './jobs/store.ts';
import type { JobRecord } from './jobs/types.ts';
import { createCleanupManager } from './resources/cleanup-manager.ts';
import { lockDataDir } from './resources/data-dir-lock.ts';
import { createHealth } from './resources/health.ts';
import { createJobDirs, type JobDirs } from './resources/job-dirs.ts';
import { createPressureGauge } from './resources/pressure-gauge.ts';
import { killStrayProcesses } from './resources/stray-processes.ts';
import { createSystemMonitor, type SystemReadings } from './resources/system-monitor.ts';
import type { Services } from './services.ts';
import { createChunkTranscriber } from './transcribe/chunk-transcriber.ts';
import { createCircuitBreaker } from './transcribe/circuit-breaker.ts';
import { resolveModel } from './transcribe/models.ts';
import { createProvider } from './transcribe/providers/index.ts';
import { createRateLimiter } from './transcribe/rate-limiter.ts';
import {
  createCostEstimator,
  createMediaValidator,
  createProviderValidator,
  createRequestValidator,
  createSystemValidator,
  createValidationGate,
} from './validate/index.ts';

/** The local engine reads 16 kHz PCM WAV; for OpenAI mp3 at 32 kb/s is 8x smaller than WAV and fast to encode. */
function chunkFormatFor(config: Config): ChunkFormat {
  return config.provider === 'local' ? 'wav' : 'mp3';
}

/** Test seams: what a test may replace to drive the service into states a machine cannot be put in on demand. */
export interface ServiceOverrides {
  /** Disk and memory readings (pressure tests). */
  readings?: SystemReadings;
}

/** Builds the pipeline from the config: every module gets its narrow dependencies here and nowhere else. */
export async function createServices(config: Config, logger: Logger, overrides: ServiceOverrides = {}): Promise<Services> {
  const lock = lockDataDir(config.dataDir);
  const now = () => new Date();
  const store = new JobStore({ file: path.join(config.dataDir, 'jobs.sqlite'), now });
  const dirs = createJobDirs({ dataDir: config.dataDir, logger });
  const provider = createProvider(config, logger);
  const chunkFormat = chunkFormatFor(config);

  const monitor = createSystemMonitor({
    dataDir: config.dataDir,
    thresholds: config.pressure.thresholds,
    ...(overrides.readings ? { readings: overrides.readings } : {}),
  });
  const cleanup = createCleanupManager({
    store,
    dirs,
    logger: logger.child({ component: 'cleanup' }),
    config: { retentionMs: config.retention.jobsMs, uploadRetentionMs: config.retention.uploadsMs, intervalMs: config.retention.sweepIntervalMs },
    clock: now,
  });
  const pressure = createPressureGauge({ monitor, logger: logger.child({ component: 'pressure' }), onCritical: () => cleanup.emergency() });
  // The runner removes an ended job's upload through `dirs.removeUpload`; routing that through the cleanup policy
  // is what lets UPLOAD_RETENTION_HOURS keep it.
  const pipelineDirs: JobDirs = { ...dirs, removeUpload: (id) => cleanup.releaseUpload(id) };
  const prober = createProber({ logger, timeoutS: config.probeTimeoutS });
  const decodeChecker = createDecodeChecker({ logger, timeoutS: config.probeTimeoutS });
  const systemValidator = createSystemValidator({ monitor, logger });
  const providerValidator = createProviderValidator({ provider, logger });
  const gate = createValidationGate({
    logger,
    system: systemValidator,
    media: createMediaValidator({ logger, prober, decodeChecker, maxDurationS: config.maxDurationS, chunkSeconds: config.chunkSeconds }),
    provider: providerValidator,
    estimator: createCostEstimator({
      logger,
      provider: provider.name,
      priceOverridesJson: config.pricePerMinuteJson,
      maxJobCostUsd: config.maxJobCostUsd,
    }),
    fields: createRequestValidator({ defaultModel: config.model, knownModels: provider.models }),
  });

  const limiter = createRateLimiter({ rpm: config.rateLimit.rpm, burst: config.rateLimit.burst, maxInFlight: config.maxInFlight, logger });
  const breaker = createCircuitBreaker({ name: provider.name, logger });
  const transcriber = createChunkTranscriber({
    provider,
    limiter,
    breaker,
    logger,
    maxAttempts: config.chunkMaxAttempts,
    baseDelayMs: config.retry.baseDelayMs,
    maxDelayMs: config.retry.maxDelayMs,
    chunkDeadlineMs: config.retry.chunkDeadlineMs,
  });
  const slicer = createSlicer({ logger, timeoutS: config.ffmpegTimeoutS });
  const silences = createSilenceDetector({ logger, timeoutS: config.ffmpegTimeoutS });

  const planCuts = async (job: JobRecord, signal: AbortSignal): Promise<number[]> => {
    const model = resolveModel(provider.name, job.request.model);
    const maxChunkS = Math.min(model.maxSeconds, maxChunkSecondsForBytes(chunkFormat, model.maxBytes));
    const found = await silences.detectSilences(dirs.uploadPath(job.id), {
      demuxer: job.audio.demuxer,
      maxDurationS: config.maxDurationS,
      signal,
    });
    return planSplits({
      durationS: job.audio.duration_s,
      targetS: Math.min(config.chunkSeconds, maxChunkS),
      maxChunkS,
      silences: found,
      searchWindowS: Math.min(config.chunkSeconds / 4, 60),
    });
  };

  const runner = new JobRunner({
    logger,
    store,
    now,
    maxConcurrentJobs: config.maxConcurrentJobs,
    pipeline: {
      store,
      dirs: pipelineDirs,
      planCuts,
      slice: (opts) => slicer.slice(opts),
      transcribe: (input, hooks) => transcriber.transcribe(input, hooks),
      chunkFormat,
      concurrency: config.concurrency,
      maxDurationS: config.maxDurationS,
      maxFailedChunkRatio: config.maxFailedChunkRatio,
      now,
    },
  });

  const health = createHealth({ store, monitor, providerValidator, breaker, limiter, runner });
  let closing: Promise<void> | null = null;

  return {
    config,
    store,
    dirs,
    runner,
    async admit(expectedBytes) {
      await systemValidator.check({ sizeBytes: expectedBytes ?? 0, durationS: null });
    },
    validateFields: (fields) => gate.validateFields(fields),
    async validateMedia(input) {
      const result = await gate.validate(input);
      return { audio: result.audio, estimate: result.estimate, plannedChunks: result.plannedChunks };
    },
    health: () => health.report(),
    pressure,
    async start() {
      await health.start();
      await killStrayProcesses({ jobsRoot: dirs.root, logger });
      await dirs.sweepOrphans(store.jobIds());
      // Leftovers of jobs that ended just before a crash, and rows whose retention ran out while the service was down.
      await cleanup.sweep();
      cleanup.start();
      runner.resumeUnfinished();
    },
    close() {
      // Every step runs even when one fails: drain jobs, stop the limiter, close the store.
      closing ??= (async () => {
        const steps = [
          () => cleanup.stop(),
          () => runner.close(config.shutdownTimeoutMs),
          () => limiter.stop(),
          async () => store.close(),
          async () => lock.release(),
        ];
        for (const step of steps) {
          await step().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
        }
      })();
      return closing;
    },
  };
}
