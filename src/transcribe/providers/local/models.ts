import type { ChunkIntake } from '../../../chunker/chunk-format.ts';
import type { ModelInfo } from '../../models.ts';

const EN_US: ModelInfo = {
  id: 'pocketsphinx-en-us',
  maxBytes: Infinity,
  maxSeconds: Infinity,
  // The acoustic model, dictionary and language model are US English (the en-us files of the model directory).
  segmentTimes: true,
  // pocketsphinx -time yes gives every word its own times (the seams between overlapping chunks are placed on them).
  wordTimes: true,
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

/**
 * Seconds of overlap for the local engine where a cut splits speech. Measured on ~60 s of continuous speech cut
 * every 6 s (docs/performance.md, bench `seams`): WER 50.2 % without overlap, 47.4 % with 1-3 s, 46.5 % with
 * 4 s, 46.9 % with 5 s (one run on the whole file: 43.2 %). pocketsphinx restarts its feature normalisation
 * in every file, so a later chunk needs a few seconds before its words are as good as the earlier chunk's.
 * Confirmed on the mean of three clips at two cut offsets each (bench/seam-yardstick.ts): WER minus the whole
 * file +1.96 points with 2 s, +1.49 with 4 s, +1.56 with 5 s.
 */
export const LOCAL_OVERLAP_S = 4;

/** pocketsphinx reads 16 kHz mono PCM WAV and nothing else. */
export const LOCAL_CHUNKS: ChunkIntake = {
  copyable: [{ demuxer: 'wav', codecs: ['pcm_s16le'], format: 'wav', sampleRate: 16_000, channels: 1 }],
  encodeFormat: 'wav',
  encodeReason: 'the local engine reads 16 kHz mono PCM WAV only',
};
