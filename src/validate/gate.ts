import type { Logger } from 'pino';
import type { MediaProbe } from '../chunker/types.ts';
import { isAppError, type ErrorCode } from '../errors.ts';
import type { AudioInfo, CostEstimate, JobRequest } from '../jobs/types.ts';
import type { CostEstimator } from './cost-estimator.ts';
import type { MediaValidator } from './media-validator.ts';
import type { ProviderValidator } from './provider-validator.ts';
import type { RequestValidator, TextFields, ValidatedFields } from './request-validator.ts';
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
   * -> provider -> budget; stops at the first failure, which is rethrown unchanged (its code and status).
   */
  validate(input: GateInput): Promise<GateResult>;
}

export function createValidationGate(deps: ValidationGateDeps): ValidationGate {
  const { logger } = deps;

  /** Runs one check, records its outcome and timing, and rethrows its error. */
  async function step<T>(checks: CheckRecord[], name: CheckName, run: () => Promise<T> | T): Promise<T> {
    const started = performance.now();
    try {
      const value = await run();
      checks.push({ name, ok: true, ms: performance.now() - started });
      return value;
    } catch (err) {
      const record: CheckRecord = { name, ok: false, ms: performance.now() - started };
      if (isAppError(err)) record.code = err.code;
      checks.push(record);
      logger.info({ checks }, `validation failed at ${name}`);
      throw err;
    }
  }

  return {
    validateFields(fields) {
      if (!deps.fields) throw new TypeError('createValidationGate: validateFields needs the fields validator');
      return deps.fields.validate(fields);
    },

    async validate({ file, filename, sizeBytes, request, signal }) {
      const checks: CheckRecord[] = [];
      // The upload is on disk by now: only what is still to be written has to fit in the free space.
      await step(checks, 'system', () => deps.system.check({ sizeBytes, durationS: null, uploadStored: true }));
      const media = await step(checks, 'media', () =>
        deps.media.validate({ file, filename, ...(signal ? { signal } : {}) }),
      );
      const durationS = media.audio.duration_s;
      await step(checks, 'storage', () => deps.system.check({ sizeBytes, durationS, uploadStored: true }));
      await step(checks, 'provider', () => deps.provider.check(request.model));
      const estimate = await step(checks, 'budget', () => {
        const { estimate } = deps.estimator.estimate({
          durationS,
          model: request.model,
          plannedChunks: media.plannedChunks,
        });
        deps.estimator.checkBudget(estimate, request.max_cost_usd);
        return estimate;
      });
      logger.info(
        {
          checks,
          durationS,
          demuxer: media.audio.demuxer,
          plannedChunks: media.plannedChunks,
          costUsd: estimate.cost_usd,
        },
        'validation passed',
      );
      return { audio: media.audio, probe: media.probe, estimate, plannedChunks: media.plannedChunks, checks };
    },
  };
}
