import { ENGINES, type ProviderName } from './providers/index.ts';

/** Limits and pricing of one engine's model; what the chunk plan and the cost estimate need. Engines declare theirs. */
export interface ModelInfo {
  id: string;
  /** Largest file one request may carry; Infinity when the provider has no cap. */
  maxBytes: number;
  /** Longest audio one request may carry; Infinity when the provider has no cap. */
  maxSeconds: number;
  /** Whether the provider returns segment times (otherwise a chunk is one segment). */
  segmentTimes: boolean;
  /** Whether the provider returns word times too (whisper's timestamp_granularities[]=word). */
  wordTimes: boolean;
  pricePerMinuteUsd: number;
  /**
   * ISO-639-1 codes the model recognises, or null for any (it detects the language or takes any hint). A job
   * asking for another language is refused at upload rather than failing after the work.
   */
  languages: readonly string[] | null;
  /** Whether the model translates speech into English (a job `task` of `translate`, POST /v1/audio/translations). */
  translation: boolean;
  /** False for the conservative stand-in returned for a model the table does not know. */
  known: boolean;
}

/** Model ids the engine knows, in table order. */
export function modelsFor(provider: ProviderName): readonly string[] {
  return ENGINES[provider].models.map((m) => m.id);
}

/** The table entry, or undefined when the model is not known for that provider. */
export function findModel(provider: ProviderName, id: string): ModelInfo | undefined {
  return ENGINES[provider].models.find((m) => m.id === id);
}

export function isKnownModel(provider: ProviderName, id: string): boolean {
  return findModel(provider, id) !== undefined;
}

/** The table entry, or the engine's stand-in for a model it does not know. */
export function resolveModel(provider: ProviderName, id: string): ModelInfo {
  return findModel(provider, id) ?? ENGINES[provider].unknownModel(id);
}
