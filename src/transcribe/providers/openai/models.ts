import type { ChunkIntake } from '../../../chunker/chunk-format.ts';
import type { ModelInfo } from '../../models.ts';

const MiB = 1024 * 1024;

export const OPENAI_MAX_BYTES = 25 * MiB;

/**
 * What is asked of an OpenAI-compatible server follows from these: `segmentTimes` asks for verbose_json (it
 * carries segment times), `wordTimes` adds timestamp_granularities[]=word.
 */
export const OPENAI_MODELS: readonly ModelInfo[] = [
  {
    id: 'whisper-1',
    maxBytes: OPENAI_MAX_BYTES,
    maxSeconds: Infinity,
    segmentTimes: true,
    wordTimes: true,
    pricePerMinuteUsd: 0.006,
    languages: null,
    // The translations endpoint takes whisper-1 only.
    translation: true,
    known: true,
  },
  // The gpt-4o models reject verbose_json and answer audio longer than about 1400 s with a 400.
  {
    id: 'gpt-4o-transcribe',
    maxBytes: OPENAI_MAX_BYTES,
    maxSeconds: 1400,
    segmentTimes: false,
    wordTimes: false,
    pricePerMinuteUsd: 0.006,
    languages: null,
    translation: false,
    known: true,
  },
  {
    id: 'gpt-4o-mini-transcribe',
    maxBytes: OPENAI_MAX_BYTES,
    maxSeconds: 1400,
    segmentTimes: false,
    wordTimes: false,
    pricePerMinuteUsd: 0.003,
    languages: null,
    translation: false,
    known: true,
  },
];

/**
 * The table entry, or for an unknown OpenAI-compatible model a conservative stand-in: OpenAI's byte cap, plain
 * json (every compatible server speaks it), and the highest known price so estimates never undershoot.
 */
export function openAIModel(id: string): ModelInfo {
  const found = OPENAI_MODELS.find((m) => m.id === id);
  if (found) return found;
  const maxPrice = Math.max(...OPENAI_MODELS.map((m) => m.pricePerMinuteUsd));
  return {
    id,
    maxBytes: OPENAI_MAX_BYTES,
    maxSeconds: Infinity,
    segmentTimes: false,
    wordTimes: false,
    pricePerMinuteUsd: maxPrice,
    languages: null,
    translation: false,
    known: false,
  };
}

/**
 * Source demuxer + codec whose packets can be written into a chunk file that OpenAI accepts (flac, mp3, ogg,
 * wav), without touching the audio. m4a/mp4/webm are accepted too but are not chunk formats the rest of the
 * pipeline (re-encode fallback, file naming) knows, so they take the re-encode path. A re-encode writes mp3 at
 * 32 kb/s: 8x smaller than WAV.
 */
export const OPENAI_CHUNKS: ChunkIntake = {
  copyable: [
    { demuxer: 'mp3', codecs: ['mp3'], format: 'mp3' },
    { demuxer: 'wav', codecs: ['pcm_s16le'], format: 'wav' },
    { demuxer: 'flac', codecs: ['flac'], format: 'flac' },
    { demuxer: 'ogg', codecs: ['vorbis', 'opus'], format: 'ogg' },
  ],
  encodeFormat: 'mp3',
};
