import { CHUNK_SAMPLE_RATE, chunkEncoding, maxChunkSecondsForBytes } from './chunk-format.ts';
import { mp3LeadSeconds } from './mp3-frames.ts';
import { copyFormatFor, type ChunkFormat, type ChunkIntake } from './chunk-format.ts';

/** How the slicer writes chunk files: the source's own packets (`copy`) or re-encoded to 16 kHz mono. */
export type ChunkMode = 'copy' | 'encode';

export interface ChunkRecipeInput {
  /** Which sources the engine takes as they are (its own declaration). */
  intake: Pick<ChunkIntake, 'copyable' | 'encodeReason'>;
  model: { maxBytes: number; maxSeconds: number };
  audio: {
    demuxer: string;
    codec: string;
    sample_rate: number;
    channels: number;
    size_bytes: number;
    duration_s: number;
  };
  /** CHUNK_SECONDS: the chunk length aimed at. */
  chunkSeconds: number;
  /** What a re-encode writes. */
  encodeFormat: ChunkFormat;
  /**
   * CHUNK_OVERLAP_SECONDS: only PCM WAV and mp3 chunks can carry it (samples, or whole frames, joined byte for
   * byte); an mp3 chunk's overlap is rounded to whole frames.
   */
  overlapS?: number;
  /**
   * How many cut points of the plan fell on no silence. Overlap only repairs a word split at a cut, so with 0 it
   * is not applied (and the chunks may be copied); undefined or null (not known) counts as some.
   */
  hardCuts?: number | null;
}

export interface ChunkRecipe {
  mode: ChunkMode;
  /** The chunk files' format (their extension and muxer). */
  format: ChunkFormat;
  /** The chunk length to aim at: CHUNK_SECONDS, shortened to the model's caps. */
  targetS: number;
  /** The longest chunk the plan may make so a file stays under the model's byte and second caps. */
  maxChunkS: number;
  /** The model's byte cap, which a chunk that still comes out larger is split again to fit. */
  maxBytes: number;
  /** Estimated bytes per second of audio in a chunk file. */
  bytesPerS: number;
  /** Seconds each chunk after the first repeats from the end of the one before: 0 unless the chunks are WAV or mp3 and a cut missed every silence. */
  overlapS: number;
  /** Why this recipe, for the log. */
  reason: string;
}

/**
 * Share of the byte cap a copied chunk is planned to fill: VBR sources are denser in places than their average,
 * and a chunk that still comes out too large is split again (slower, so it should stay rare).
 */
export const COPY_BYTE_MARGIN = 0.8;

/**
 * Pure: stream copy when the provider takes the source's codec and container as they are and a planned chunk
 * fits the model's byte cap (estimated from the file's average bitrate), else re-encode. Copy is ~10x faster
 * than decoding and encoding, and it keeps the provider's input identical to the upload.
 */
export function chooseChunkRecipe(input: ChunkRecipeInput): ChunkRecipe {
  const recipe = chooseIgnoringOverlap(input);
  const overlapS = input.overlapS ?? 0;
  if (!(overlapS > 0)) return { ...recipe, overlapS: 0 };
  if (input.hardCuts === 0)
    return { ...recipe, overlapS: 0, reason: `${recipe.reason}; no overlap needed: no cut falls outside a pause` };
  if (recipe.format === 'wav') return { ...recipe, overlapS };
  if (recipe.format === 'mp3') {
    // Whole frames of the chunk before, copied: the recorded overlap is what the frames hold.
    const rate = recipe.mode === 'copy' ? input.audio.sample_rate : CHUNK_SAMPLE_RATE;
    const lead = mp3LeadSeconds(overlapS, rate);
    return { ...recipe, overlapS: lead, reason: `${recipe.reason}; the ${lead} s overlap as whole mp3 frames` };
  }
  // Overlap is asked for, and only WAV and mp3 chunks can carry it: 16 kHz mono WAV, when such a chunk fits the caps.
  const wav = encodeRecipe(
    { ...input, encodeFormat: 'wav' },
    `${recipe.reason}; WAV chunks, which can carry the ${overlapS} s overlap`,
  );
  if (wav.targetS >= recipe.targetS) return { ...wav, overlapS };
  return {
    ...recipe,
    overlapS: 0,
    reason: `${recipe.reason}; no overlap: a ${recipe.targetS} s WAV chunk would exceed ${input.model.maxBytes} bytes`,
  };
}

function chooseIgnoringOverlap(input: ChunkRecipeInput): Omit<ChunkRecipe, 'overlapS'> {
  const { model, audio, chunkSeconds } = input;
  const copyAs = copyFormatFor(input.intake, audio);
  if (copyAs !== null) {
    // The average over the whole file, headers and tags included: an overestimate for a tagged file, which is safe.
    const bytesPerS = audio.duration_s > 0 ? audio.size_bytes / audio.duration_s : Infinity;
    const byBytes = Number.isFinite(model.maxBytes)
      ? Math.floor((model.maxBytes * COPY_BYTE_MARGIN) / bytesPerS)
      : Infinity;
    const maxChunkS = Math.min(model.maxSeconds, byBytes);
    const targetS = Math.min(chunkSeconds, model.maxSeconds);
    if (maxChunkS >= targetS) {
      return {
        mode: 'copy',
        format: copyAs,
        targetS,
        maxChunkS,
        maxBytes: model.maxBytes,
        bytesPerS,
        reason: `${audio.demuxer}/${audio.codec} is accepted as it is`,
      };
    }
    return encodeRecipe(
      input,
      `a ${targetS} s chunk of ${audio.codec} at ${Math.round(bytesPerS)} B/s would exceed ${model.maxBytes} bytes`,
    );
  }
  return encodeRecipe(
    input,
    input.intake.encodeReason ?? `${audio.demuxer}/${audio.codec} is not a format the provider accepts as it is`,
  );
}

function encodeRecipe(input: ChunkRecipeInput, reason: string): Omit<ChunkRecipe, 'overlapS'> {
  const { model, chunkSeconds, encodeFormat } = input;
  const maxChunkS = Math.min(model.maxSeconds, maxChunkSecondsForBytes(encodeFormat, model.maxBytes));
  return {
    mode: 'encode',
    format: encodeFormat,
    targetS: Math.min(chunkSeconds, maxChunkS),
    maxChunkS,
    maxBytes: model.maxBytes,
    bytesPerS: chunkEncoding(encodeFormat).approxBytesPerS,
    reason,
  };
}
