import type { Logger } from 'pino';
import type { ChunkIntake } from '../chunker/chunk-format.ts';
import type { Config } from '../config.ts';
import type { BackendSpec } from './backends-config.ts';
import type { ModelInfo } from './models.ts';
import type { TranscriptionProvider } from './types.ts';

/**
 * Everything the service knows about one transcription engine, declared by the engine itself in its folder under
 * src/transcribe/providers/ and listed once in the registry (providers/index.ts).
 */
export interface Engine {
  /** The model a job gets when neither the request nor TRANSCRIBE_MODEL names one. */
  defaultModel: string;
  /** The models it knows: request caps, timing granularity, languages and price of each. */
  models: readonly ModelInfo[];
  /** What is assumed of a model id the table does not know (an OpenAI-compatible server's own model, say). */
  unknownModel(id: string): ModelInfo;
  /** The chunk files it reads. */
  chunks: ChunkIntake;
  /** The provider of one backend (its URL, key and models), with the service-wide settings it needs. */
  create(backend: BackendSpec, config: Pick<Config, 'pocketsphinxModelDir'>, logger: Logger): TranscriptionProvider;
}
