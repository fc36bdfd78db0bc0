/** How chunk files are encoded: all 16 kHz mono, which is what speech models resample to anyway. */
export type ChunkFormat = 'wav' | 'flac' | 'mp3' | 'ogg';

export const CHUNK_FORMATS: readonly ChunkFormat[] = ['wav', 'flac', 'mp3', 'ogg'];

export const CHUNK_SAMPLE_RATE = 16_000;

export interface ChunkEncoding {
  format: ChunkFormat;
  /** File extension, without the dot. */
  extension: string;
  /** The muxer name for `-f` / `-segment_format`. */
  muxer: string;
  mimeType: string;
  /** ffmpeg output options after the stream selection: sample rate, channels, codec. */
  codecArgs: readonly string[];
  /**
   * Bytes per second of speech, measured on the LibriVox fixture (an upper bound for wav, an average
   * for the others); for sizing chunks against a provider's request cap.
   */
  approxBytesPerS: number;
}

const common = ['-ar', String(CHUNK_SAMPLE_RATE), '-ac', '1'] as const;

/*
 * Measured on 612 s of speech (the fixture looped), 2 cores: size, encode time.
 *   wav  19.6 MB 0.2 s | flac 8.0 MB 0.5 s | mp3 32k 2.45 MB 1.7 s | ogg/opus 24k 1.5 MB 4.5 s
 * Every one of them fits a 600 s chunk under whisper-1's 25 MiB cap (wav only up to ~819 s).
 */
const ENCODINGS: Record<ChunkFormat, ChunkEncoding> = {
  wav: {
    format: 'wav',
    extension: 'wav',
    muxer: 'wav',
    mimeType: 'audio/wav',
    codecArgs: [...common, '-c:a', 'pcm_s16le'],
    approxBytesPerS: 32_000,
  },
  flac: {
    format: 'flac',
    extension: 'flac',
    muxer: 'flac',
    mimeType: 'audio/flac',
    codecArgs: [...common, '-c:a', 'flac'],
    approxBytesPerS: 13_100,
  },
  mp3: {
    format: 'mp3',
    extension: 'mp3',
    muxer: 'mp3',
    mimeType: 'audio/mpeg',
    // 32 kbit/s mono is transparent enough for speech recognition at 16 kHz.
    codecArgs: [...common, '-c:a', 'libmp3lame', '-b:a', '32k'],
    approxBytesPerS: 4_000,
  },
  ogg: {
    format: 'ogg',
    extension: 'ogg',
    muxer: 'ogg',
    mimeType: 'audio/ogg',
    // compression_level 5 halves libopus' default encode time at the same size.
    codecArgs: [...common, '-c:a', 'libopus', '-b:a', '24k', '-application', 'voip', '-compression_level', '5'],
    approxBytesPerS: 2_500,
  },
};

export function chunkEncoding(format: ChunkFormat): ChunkEncoding {
  return ENCODINGS[format];
}

export function isChunkFormat(value: string): value is ChunkFormat {
  return (CHUNK_FORMATS as readonly string[]).includes(value);
}

/** The longest chunk (seconds) whose estimated file stays under `maxBytes`, with a 10 % margin. */
export function maxChunkSecondsForBytes(format: ChunkFormat, maxBytes: number): number {
  return Math.floor((maxBytes * 0.9) / ENCODINGS[format].approxBytesPerS);
}

/** A source stream an engine reads as it is: its packets are written into a chunk file of `format` untouched. */
export interface CopyableSource {
  demuxer: string;
  codecs: readonly string[];
  format: ChunkFormat;
  /** Only at this sample rate and channel count, for an engine that reads nothing else. */
  sampleRate?: number;
  channels?: number;
}

/** What chunk files an engine reads. Each engine declares its own (src/transcribe/providers/<engine>/). */
export interface ChunkIntake {
  /** Sources whose packets it takes as they are (a stream copy, ~10x faster than an encode). */
  copyable: readonly CopyableSource[];
  /** What a re-encode writes for it. */
  encodeFormat: ChunkFormat;
  /** Why a source it cannot take as it is gets re-encoded, for the log; by default its demuxer/codec is named. */
  encodeReason?: string;
}

/** The chunk format a source can be copied into for this engine, or null when it must be re-encoded. */
export function copyFormatFor(
  intake: Pick<ChunkIntake, 'copyable'>,
  audio: { demuxer: string; codec: string; sample_rate: number; channels: number },
): ChunkFormat | null {
  const fits = (c: CopyableSource) =>
    c.demuxer === audio.demuxer &&
    c.codecs.includes(audio.codec) &&
    (c.sampleRate === undefined || c.sampleRate === audio.sample_rate) &&
    (c.channels === undefined || c.channels === audio.channels);
  return intake.copyable.find(fits)?.format ?? null;
}
