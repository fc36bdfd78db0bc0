import type { Logger } from 'pino';
import type { MediaProbe } from '../chunker/types.ts';
import { isAppError, type ErrorCode } from '../errors.ts';
import type { AudioInfo, CostEstimate, JobRequest } from '../jobs/types.ts';
import type { CostEstimator } from './cost-estimator.ts';
import type { MediaValidationInput, MediaValidator } from './media-validator.ts';
import type { ProviderValidator } from './provider-validator.ts';
import type { RequestValidator, TextFields, ValidatedFields } from './request-validator.ts';
import { settle, type Settled } from './settle.ts';
import type { SystemValidator } from './system-validator.ts';

export type CheckName = 'fields' | 'system' | 'media' | 'storage' | 'provider' | 'budget';

export interface CheckRecord {
  name: CheckName;
  ok: boolean;
  ms: number;
  code?: ErrorCode;
}

export interface GateInput {
  file: string;
  filename: string;
  sizeBytes: number;
  request: JobRequest;
  signal?: AbortSignal;
  /** The upload's frame walk as it streamed in (media-validator.ts). */
  walked?: MediaValidationInput['walked'];
  /** Passed to the media check (media-validator.ts). */
  whileChecking?: () => void;
}

export interface GateResult {
  audio: AudioInfo;
  probe: MediaProbe;
  estimate: CostEstimate;
  plannedChunks: number;
  checks: CheckRecord[];
}

export interface ValidationGateDeps {
  logger: Logger;
  system: SystemValidator;
  media: MediaValidator;
  /** The check of the backend serving the model (one ProviderValidator per backend). */
  provider: { check(model: string): ReturnType<ProviderValidator['check']> };
  estimator: CostEstimator;
  /** Needed only for validateFields. */
  fields?: RequestValidator;
}

export interface ValidationGate {
  /** The text fields, before the file is probed. Throws 400 INVALID_FIELD. */
  validateFields(fields: TextFields): ValidatedFields;
  /**
   * system (memory, disk level) -> media -> storage (disk for the chunks of the real duration; the upload is stored)
   * -> provider -> budget; stops at the first failure in that order, which is rethrown unchanged (its code and
   * status). The provider check needs nothing from the others, so it runs beside them from the start; its outcome
   * is taken in its place in the order, so a file refused for its media is refused so whatever the provider says.
   */
  validate(input: GateInput): Promise<GateResult>;
}

/** Starts run now; its outcome and how long it took, never a rejection. */
async function timed<T>(run: () => Promise<T> | T): Promise<Settled<T> & { ms: number }> {
  const started = performance.now();
  const outcome = await settle((async () => run())());
  return { ...outcome, ms: performance.now() - started };
}

export function createValidationGate(deps: ValidationGateDeps): ValidationGate {
  const { logger } = deps;

  /** Records a check's outcome and timing; returns its value or rethrows its error. */
  function finish<T>(checks: CheckRecord[], name: CheckName, outcome: Settled<T> & { ms: number }): T {
    const record: CheckRecord = { name, ok: outcome.ok, ms: outcome.ms };
    if (!outcome.ok && isAppError(outcome.error)) record.code = outcome.error.code;
    checks.push(record);
    if (outcome.ok) return outcome.value;
    logger.info({ checks }, `validation failed at ${name}`);
    throw outcome.error;
  }

  /** Runs one check now, in sequence. */
  async function step<T>(checks: CheckRecord[], name: CheckName, run: () => Promise<T> | T): Promise<T> {
    return finish(checks, name, await timed(run));
  }

  return {
    validateFields(fields) {
      if (!deps.fields) throw new TypeError('createValidationGate: validateFields needs the fields validator');
      return deps.fields.validate(fields);
    },

    async validate({ file, filename, sizeBytes, request, signal, walked, whileChecking }) {
      const started = performance.now();
      const checks: CheckRecord[] = [];
      // Usually a cached answer (the check is kept warm and started when the upload began); when it is not, its
      // round trip overlaps the media probe instead of following it. Settled here, so an outcome never waited
      // for (an earlier check refused) is not an unhandled rejection.
      const provider = timed(() => deps.provider.check(request.model));
      // The upload is on disk by now: only what is still to be written has to fit in the free space.
      await step(checks, 'system', () => deps.system.check({ sizeBytes, durationS: null, uploadStored: true }));
      const media = await step(checks, 'media', () =>
        deps.media.validate({
          file,
          filename,
          ...(signal ? { signal } : {}),
          ...(walked ? { walked } : {}),
          ...(whileChecking ? { whileChecking } : {}),
          model: request.model,
          sequential: request.context === 'sequential',
        }),
      );
      const durationS = media.audio.duration_s;
      await step(checks, 'storage', () => deps.system.check({ sizeBytes, durationS, uploadStored: true }));
      // Its own time is recorded (it ran beside the others), not the wait for it here.
      finish(checks, 'provider', await provider);
      const estimate = await step(checks, 'budget', () => {
        const { estimate } = deps.estimator.estimate({
          durationS,
          model: request.model,
          plannedChunks: media.planned.chunks,
          overlapS: media.planned.overlapS,
        });
        deps.estimator.checkBudget(estimate, request.max_cost_usd);
        return estimate;
      });
      logger.info(
        {
          checks,
          durationS,
          demuxer: media.audio.demuxer,
          plannedChunks: media.planned.chunks,
          costUsd: estimate.cost_usd,
          ms: performance.now() - started,
        },
        'validation passed',
      );
      return { audio: media.audio, probe: media.probe, estimate, plannedChunks: media.planned.chunks, checks };
    },
  };
}
