import type { ChunkIntake } from '../../../chunker/chunk-format.ts';
import type { ModelInfo } from '../../models.ts';

const EN_US: ModelInfo = {
  id: 'pocketsphinx-en-us',
  maxBytes: Infinity,
  maxSeconds: Infinity,
  // The acoustic model, dictionary and language model are US English (the en-us files of the model directory).
  segmentTimes: true,
  wordTimes: false,
  pricePerMinuteUsd: 0,
  languages: ['en'],
  translation: false,
  known: true,
};

export const LOCAL_MODELS: readonly ModelInfo[] = [EN_US];

/** The table entry, or for another id the local limits (the local provider rejects it anyway). */
export function localModel(id: string): ModelInfo {
  return LOCAL_MODELS.find((m) => m.id === id) ?? { ...EN_US, id, known: false };
}

/** pocketsphinx reads 16 kHz mono PCM WAV and nothing else. */
export const LOCAL_CHUNKS: ChunkIntake = {
  copyable: [{ demuxer: 'wav', codecs: ['pcm_s16le'], format: 'wav', sampleRate: 16_000, channels: 1 }],
  encodeFormat: 'wav',
  encodeReason: 'the local engine reads 16 kHz mono PCM WAV only',
};
