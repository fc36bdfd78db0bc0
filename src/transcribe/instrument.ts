import { performance } from 'node:perf_hooks';
import { isAppError } from '../errors.ts';
import type { ChunkTranscriber } from './chunk-transcriber.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { classifyError } from './retry-policy.ts';
import type { TranscriptionProvider } from './types.ts';

export interface ChunkObservation {
  provider: string;
  model: string;
  outcome: 'success' | 'failed' | 'cancelled';
  seconds: number;
}

/** What transcription reports for the service's metrics (src/metrics/service-metrics.ts counts it). */
export interface TranscriptionMetrics {
  /** One chunk's transcription, from its first try to its result: limiter waits and retries included. */
  chunk(observation: ChunkObservation): void;
  /** One provider call; errorClass is the retry policy's class ('none' on success). */
  providerRequest(labels: { provider: string; model: string; outcome: 'success' | 'error'; errorClass: string }): void;
  retry(labels: { provider: string; errorClass: string }): void;
  /** Time one provider call waited for a rate-limit token and an in-flight slot before it started. */
  limiterWait(seconds: number): void;
}

/** The provider with every call counted by outcome and error class; the calls themselves are untouched. */
export function instrumentProvider(
  provider: TranscriptionProvider,
  metrics: Pick<TranscriptionMetrics, 'providerRequest'>,
  /** The `provider` label: the backend's name. */
  label: string = provider.name,
): TranscriptionProvider {
  return {
    name: provider.name,
    models: provider.models,
    check: (signal) => provider.check(signal),
    async transcribe(input) {
      const labels = { provider: label, model: input.model };
      try {
        const result = await provider.transcribe(input);
        metrics.providerRequest({ ...labels, outcome: 'success', errorClass: 'none' });
        return result;
      } catch (err) {
        metrics.providerRequest({ ...labels, outcome: 'error', errorClass: classifyError(err).class });
        throw err;
      }
    },
  };
}

/** The chunk transcriber with each chunk timed end to end and each retry counted; its hooks still reach the caller. */
export function instrumentTranscriber(
  transcriber: ChunkTranscriber,
  metrics: Pick<TranscriptionMetrics, 'chunk' | 'retry'>,
  providerName: string,
): ChunkTranscriber {
  return {
    async transcribe(input, hooks = {}) {
      const started = performance.now();
      const observe = (outcome: 'success' | 'failed' | 'cancelled') =>
        metrics.chunk({
          provider: providerName,
          model: input.model,
          outcome,
          seconds: (performance.now() - started) / 1000,
        });
      try {
        const result = await transcriber.transcribe(input, {
          ...hooks,
          onRetry(info) {
            metrics.retry({ provider: providerName, errorClass: info.errorClass });
            hooks.onRetry?.(info);
          },
        });
        observe('success');
        return result;
      } catch (err) {
        observe(input.signal.aborted || (isAppError(err) && err.code === 'CANCELLED') ? 'cancelled' : 'failed');
        throw err;
      }
    },
  };
}

/**
 * The limiter with each call's wait timed, from asking for a token to its start; the limiter itself is untouched.
 * A call abandoned while waiting (cancelled, deadline, shutdown) never starts and is not observed.
 */
export function instrumentLimiter(
  limiter: Pick<RateLimiter, 'schedule' | 'pauseFor'>,
  metrics: Pick<TranscriptionMetrics, 'limiterWait'>,
): Pick<RateLimiter, 'schedule' | 'pauseFor'> {
  return {
    pauseFor: (ms, reason) => limiter.pauseFor(ms, reason),
    schedule<T>(fn: () => Promise<T>, opts?: { signal?: AbortSignal }): Promise<T> {
      const asked = performance.now();
      return limiter.schedule(() => {
        metrics.limiterWait((performance.now() - asked) / 1000);
        return fn();
      }, opts);
    },
  };
}
