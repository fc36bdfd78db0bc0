import type { Logger } from 'pino';
import {
  createChunkSource,
  createWindowScanSlots,
  type ChunkSource,
  type ChunkSourceConfig,
} from '../chunker/index.ts';
import type { Config } from '../config.ts';
import type { HealthBackend } from '../http/health-report.ts';
import type { BackendRegistry } from '../transcribe/backends.ts';
import { engineDefaults, ENGINES } from '../transcribe/providers/index.ts';
import {
  createCostEstimator,
  createProviderValidator,
  type CostEstimator,
  type ProviderValidator,
} from '../validate/index.ts';

/**
 * The per-backend parts of admission and slicing, each routed by the job's model to the backend serving it: the
 * provider check, the cost estimate, the chunk files and their count planned at admission (the engine's chunk
 * defaults and intake, the model's caps), and the health rows.
 */
export interface BackendStages {
  validator: { check(model: string): ReturnType<ProviderValidator['check']> };
  /** Every backend's provider check started in the background unless fresh (service start, an upload begins). */
  warmProviders(): void;
  /** An upload began: each backend loads what its first request needs (a lazily imported SDK) meanwhile. */
  prepareProviders(): void;
  /** Stops the background refresh of the provider checks (close). */
  stopProviders(): void;
  estimator: CostEstimator;
  chunks: ChunkSource;
  health: HealthBackend[];
}

export function createBackendStages(
  config: Pick<Config, 'pricePerMinuteJson' | 'maxJobCostUsd' | 'chunking' | 'concurrency'> & ChunkSourceConfig,
  deps: { registry: BackendRegistry; logger: Logger },
): BackendStages {
  const { registry, logger } = deps;
  // One set of decoder slots for every backend's silence scans: they all decode on the same cores.
  const scanSlots = createWindowScanSlots();
  const parts = new Map(
    registry.backends.map((b) => {
      const caps = (model: string) => registry.model(model) ?? ENGINES[b.spec.engine].unknownModel(model);
      const validator = createProviderValidator({
        provider: b.provider,
        logger: logger.child({ provider: b.spec.name }),
      });
      const estimator = createCostEstimator({
        logger,
        provider: b.spec.engine,
        priceLookup: (_engine, model) => caps(model).pricePerMinuteUsd,
        isPriced: (model) => caps(model).known,
        priceOverridesJson: config.pricePerMinuteJson,
        maxJobCostUsd: config.maxJobCostUsd,
      });
      // Each backend's engine chunks by its own defaults (a local engine beside OpenAI gets short chunks), where
      // CHUNK_SECONDS / CHUNK_OVERLAP_SECONDS do not set them for all.
      const own = engineDefaults(b.spec.engine, config.chunking.set);
      const chunks = createChunkSource(
        {
          ...config,
          chunkSeconds: own.chunkSeconds,
          chunkOverlapSeconds: own.overlapSeconds,
          evenLanes: evenLanes(config),
        },
        { logger, reader: { intake: b.chunks, caps }, scanSlots },
      );
      return [b.spec.name, { backend: b, validator, estimator, chunks }] as const;
    }),
  );
  const of = (model: string) => {
    const part = parts.get(registry.backendOf(model).spec.name);
    if (part === undefined) throw new TypeError(`no stages for the backend of ${model}`);
    return part;
  };
  const defaultBackend = registry.backendOf(registry.defaultModel);

  return {
    validator: { check: (model) => of(model).validator.check() },
    // Every backend, not only the default: the model is not known yet when an upload begins. A fresh answer
    // costs nothing, so this asks each provider at most once per TTL.
    warmProviders: () => {
      for (const part of parts.values()) part.validator.warm();
    },
    prepareProviders: () => {
      for (const part of parts.values()) part.backend.provider.prepare?.();
    },
    stopProviders: () => {
      for (const part of parts.values()) part.validator.stop();
    },
    estimator: {
      estimate: (input) => of(input.model).estimator.estimate(input),
      // The budget is the job's and the server's, whatever the backend.
      checkBudget: (estimate, maxCostUsd) => of(estimate.model).estimator.checkBudget(estimate, maxCostUsd),
    },
    chunks: {
      planned: (subject) => of(subject.model).chunks.planned(subject),
      planChunks: (subject, signal) => of(subject.model).chunks.planChunks(subject, signal),
      resume: (subject, stored) => of(subject.model).chunks.resume(subject, stored),
      open: (subject, plan, opts) => of(subject.model).chunks.open(subject, plan, opts),
    },
    health: [...parts.values()]
      .map(({ backend, validator }) => ({
        name: backend.spec.name,
        isDefault: backend === defaultBackend,
        validator,
        breaker: backend.breaker,
        limiter: backend.limiter,
      }))
      .sort((a, b) => Number(b.isDefault) - Number(a.isDefault)),
  };
}

/**
 * The lanes a short file's chunks are evened out over: the job pool's, where the chunk length is the engine's
 * default; a CHUNK_SECONDS the operator set is taken as it is.
 */
export function evenLanes(config: Pick<Config, 'concurrency' | 'chunking'>): number {
  return config.chunking.set.chunkSeconds === undefined ? config.concurrency : 1;
}
