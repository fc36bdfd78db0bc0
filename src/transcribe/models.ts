import type { ProviderName } from './types.ts';

const MiB = 1024 * 1024;

/** Limits and pricing of one provider model; what the split planner and the cost estimate need. */
export interface ModelInfo {
  provider: ProviderName;
  id: string;
  /** Largest file one request may carry; Infinity when the provider has no cap. */
  maxBytes: number;
  /** Longest audio one request may carry; Infinity when the provider has no cap. */
  maxSeconds: number;
  /** Whether the provider returns segment times (otherwise a chunk is one segment). */
  segmentTimes: boolean;
  /** The response_format to ask an OpenAI-compatible server for. */
  responseFormat: 'verbose_json' | 'json' | null;
  pricePerMinuteUsd: number;
  /**
   * ISO-639-1 codes the model recognises, or null for any (it detects the language or takes any hint). A job
   * asking for another language is refused at upload rather than failing after the work.
   */
  languages: readonly string[] | null;
  /** False for the conservative stand-in returned for a model the table does not know. */
  known: boolean;
}

export const OPENAI_MAX_BYTES = 25 * MiB;

const TABLE: readonly ModelInfo[] = [
  {
    provider: 'openai', id: 'whisper-1', maxBytes: OPENAI_MAX_BYTES, maxSeconds: Infinity,
    segmentTimes: true, responseFormat: 'verbose_json', pricePerMinuteUsd: 0.006, languages: null, known: true,
  },
  // The gpt-4o models reject verbose_json and answer audio longer than about 1400 s with a 400.
  {
    provider: 'openai', id: 'gpt-4o-transcribe', maxBytes: OPENAI_MAX_BYTES, maxSeconds: 1400,
    segmentTimes: false, responseFormat: 'json', pricePerMinuteUsd: 0.006, languages: null, known: true,
  },
  {
    provider: 'openai', id: 'gpt-4o-mini-transcribe', maxBytes: OPENAI_MAX_BYTES, maxSeconds: 1400,
    segmentTimes: false, responseFormat: 'json', pricePerMinuteUsd: 0.003, languages: null, known: true,
  },
  {
    provider: 'local', id: 'pocketsphinx-en-us', maxBytes: Infinity, maxSeconds: Infinity,
    // The acoustic model, dictionary and language model are US English (the en-us files of the model directory).
    segmentTimes: true, responseFormat: null, pricePerMinuteUsd: 0, languages: ['en'], known: true,
  },
];

export const KNOWN_MODELS: readonly ModelInfo[] = TABLE;

/** Model ids the table knows for a provider, in table order. */
export function modelsFor(provider: ProviderName): readonly string[] {
  return TABLE.filter((m) => m.provider === provider).map((m) => m.id);
}

/** The table entry, or undefined when the model is not known for that provider. */
export function findModel(provider: ProviderName, id: string): ModelInfo | undefined {
  return TABLE.find((m) => m.provider === provider && m.id === id);
}

export function isKnownModel(provider: ProviderName, id: string): boolean {
  return findModel(provider, id) !== undefined;
}

/**
 * The table entry, or for an unknown OpenAI-compatible model a conservative stand-in: OpenAI's byte cap,
 * plain json (every compatible server speaks it), and the highest known price so estimates never undershoot.
 * An unknown local model gets the local limits; the local provider rejects it anyway.
 */
export function resolveModel(provider: ProviderName, id: string): ModelInfo {
  const found = findModel(provider, id);
  if (found) return found;
  if (provider === 'local') {
    return {
      provider, id, maxBytes: Infinity, maxSeconds: Infinity, segmentTimes: true, responseFormat: null, pricePerMinuteUsd: 0,
      languages: ['en'], known: false,
    };
  }
  const maxPrice = Math.max(...TABLE.filter((m) => m.provider === 'openai').map((m) => m.pricePerMinuteUsd));
  return {
    provider, id, maxBytes: OPENAI_MAX_BYTES, maxSeconds: Infinity,
    segmentTimes: false, responseFormat: 'json', pricePerMinuteUsd: maxPrice, languages: null, known: false,
  };
}

/** Estimated price of transcribing durationS seconds (providers bill per second, priced per minute). */
export function estimateCostUsd(model: ModelInfo, durationS: number): number {
  if (!Number.isFinite(durationS) || durationS < 0) {
    throw new TypeError(`Expected durationS to be a finite number >= 0, got ${String(durationS)}`);
  }
  return (durationS / 60) * model.pricePerMinuteUsd;
}
