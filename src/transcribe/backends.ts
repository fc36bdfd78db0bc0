import type { Logger } from 'pino';
import type { ChunkIntake } from '../chunker/chunk-format.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { BackendModel, BackendSpec } from './backends-config.ts';
import type { TranscriptionMetrics } from './instrument.ts';
import { ENGINES } from './providers/index.ts';
import type { SharedCircuit } from './circuit-share.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { createTranscription, type Transcription, type TranscriptionConfig } from './transcription.ts';
import type { TranscriptionProvider } from './types.ts';

/** One configured backend, running: its provider behind its own limiter, breaker and chunk transcriber. */
export interface Backend extends Transcription {
  spec: BackendSpec;
  provider: TranscriptionProvider;
  /** The chunk files its engine reads. */
  chunks: ChunkIntake;
}

/** Model id -> the backend serving it; every job is sent where its model is served. */
export interface BackendRegistry {
  readonly backends: readonly Backend[];
  /** The model a job gets when it names none. */
  readonly defaultModel: string;
  /** Every model id, default first, then in declaration order. */
  modelIds(): string[];
  /** The model's facts, or undefined for an id no backend serves. */
  model(id: string): BackendModel | undefined;
  /** The backend serving the model; throws 400 INVALID_FIELD listing the known models for any other id. */
  backendOf(model: string): Backend;
}

export interface BackendRegistryDeps {
  metrics: TranscriptionMetrics;
  logger: Logger;
  /** A backend's limit shared through Redis in scale-out mode (keyed by its name); null: one of this process. */
  sharedLimiter?: (spec: BackendSpec) => Promise<RateLimiter | null>;
  /** A backend's circuit state shared through Redis in scale-out mode (keyed by its name); null: this process's. */
  sharedCircuit?: (spec: BackendSpec) => SharedCircuit | null;
}

export type BackendRegistryConfig = Pick<Config, 'backends' | 'model' | 'pocketsphinxModelDir'> &
  Omit<TranscriptionConfig, 'rateLimit' | 'maxInFlight' | 'circuit'>;

/** The 400 for a model no backend serves, naming the known ones (in the message and in details.models). */
export function unknownModelError(model: string, known: readonly string[]): AppError {
  const shown = model.length > 40 ? `${model.slice(0, 40)}…` : model;
  return new AppError(
    'INVALID_FIELD',
    `model ${JSON.stringify(shown)} is not available; use one of: ${known.join(', ')}`,
    { details: { field: 'model', models: [...known] } },
  );
}

/** Each backend's provider and transcription stage, built once; the job pipeline asks by model. */
export async function createBackendRegistry(
  config: BackendRegistryConfig,
  deps: BackendRegistryDeps,
): Promise<BackendRegistry> {
  const backends: Backend[] = [];
  for (const spec of config.backends) {
    const logger = deps.logger.child({ provider: spec.name });
    const provider = ENGINES[spec.engine].create(spec, config, logger);
    const transcription = createTranscription(
      { ...config, rateLimit: spec.rateLimit, maxInFlight: spec.maxInFlight, circuit: spec.circuit },
      {
        provider,
        name: spec.name,
        metrics: deps.metrics,
        logger,
        limiter: (await deps.sharedLimiter?.(spec)) ?? null,
        circuit: deps.sharedCircuit?.(spec) ?? null,
      },
    );
    backends.push({ ...transcription, spec, provider, chunks: ENGINES[spec.engine].chunks });
  }
  const byModel = new Map<string, { backend: Backend; model: BackendModel }>();
  for (const backend of backends) {
    for (const model of backend.spec.models) byModel.set(model.id, { backend, model });
  }
  const ids = [config.model, ...[...byModel.keys()].filter((id) => id !== config.model)];
  if (!byModel.has(config.model)) throw new TypeError(`createBackendRegistry: no backend serves ${config.model}`);

  return {
    backends,
    defaultModel: config.model,
    modelIds: () => [...ids],
    model: (id) => byModel.get(id)?.model,
    backendOf(model) {
      const found = byModel.get(model);
      if (found === undefined) throw unknownModelError(model, ids);
      return found.backend;
    },
  };
}
