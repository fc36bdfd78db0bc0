import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { createChunkRemedies } from './chunk-remedies.ts';
import { createChunkReshaper } from './chunk-reshaper.ts';
import { createChunkTranscriber, type ChunkTranscriber } from './chunk-transcriber.ts';
import { createCircuitBreaker, type CircuitBreaker } from './circuit-breaker.ts';
import type { SharedCircuit } from './circuit-share.ts';
import {
  instrumentLimiter,
  instrumentProvider,
  instrumentTranscriber,
  type TranscriptionMetrics,
} from './instrument.ts';
import { createRateLimiter, type RateLimiter } from './rate-limiter.ts';
import type { TranscriptionProvider } from './types.ts';

export type TranscriptionConfig = Pick<
  Config,
  'rateLimit' | 'maxInFlight' | 'circuit' | 'chunkMaxAttempts' | 'retry' | 'ffmpegTimeoutS'
>;

export interface TranscriptionDeps {
  provider: TranscriptionProvider;
  /** The backend's name for its breaker and metrics. @default provider.name */
  name?: string;
  metrics: TranscriptionMetrics;
  logger: Logger;
  /** The provider limit shared through Redis in scale-out mode; when absent, one of this process is made. */
  limiter?: RateLimiter | null;
  /** The breaker's state shared with the other hosts in scale-out mode; when absent, it is this process's. */
  circuit?: SharedCircuit | null;
}

export interface Transcription {
  /** One chunk to text: rate-limited, retried, behind the circuit breaker, with remedies for refused chunks, counted. */
  transcriber: ChunkTranscriber;
  /** Its stats feed the metrics and the health report; the service stops it on close. */
  limiter: RateLimiter;
  /** The provider's health, for the health report. */
  breaker: CircuitBreaker;
}

/** The transcription stage, assembled: the pipeline gets the transcriber, the service its limiter and breaker. */
export function createTranscription(config: TranscriptionConfig, deps: TranscriptionDeps): Transcription {
  const { provider, metrics, logger } = deps;
  const name = deps.name ?? provider.name;
  const limiter =
    deps.limiter ??
    createRateLimiter({
      rpm: config.rateLimit.rpm,
      burst: config.rateLimit.burst,
      maxInFlight: config.maxInFlight,
      logger,
    });
  const breaker = createCircuitBreaker({
    name,
    logger,
    failureThreshold: config.circuit.failureThreshold,
    coolDownMs: config.circuit.coolDownMs,
    shared: deps.circuit ?? null,
  });
  const transcriber = createChunkTranscriber({
    provider: instrumentProvider(provider, metrics, name),
    limiter: instrumentLimiter(limiter, metrics),
    breaker,
    logger,
    maxAttempts: config.chunkMaxAttempts,
    baseDelayMs: config.retry.baseDelayMs,
    maxDelayMs: config.retry.maxDelayMs,
    chunkDeadlineMs: config.retry.chunkDeadlineMs,
  });
  const remedies = createChunkRemedies({
    transcriber: instrumentTranscriber(transcriber, metrics, name),
    reshaper: createChunkReshaper({ logger, timeoutS: config.ffmpegTimeoutS }),
    logger,
  });
  return { transcriber: remedies, limiter, breaker };
}
