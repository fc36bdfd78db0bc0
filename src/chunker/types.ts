/** What ffprobe says about an uploaded file, reduced to what the pipeline decides on. */
export interface MediaProbe {
  /** ffprobe's format_name, e.g. "mp3" or "mov,mp4,m4a,3gp,3g2,mj2". */
  formatName: string;
  /** The demuxer every later ffmpeg call forces with `-f`, so a file cannot change meaning after the probe. */
  demuxer: string;
  formatLongName: string;
  /** Container duration in seconds (what the header claims; the media validator checks what decodes). */
  durationS: number;
  sizeBytes: number;
  bitRate: number | null;
  streamCount: number;
  audioStreamCount: number;
  videoStreamCount: number;
  /** The first audio stream, or null when there is none. */
  audio: AudioStreamInfo | null;
}

export interface AudioStreamInfo {
  index: number;
  codec: string;
  sampleRate: number;
  channels: number;
  bitRate: number | null;
}

/** One chunk file as the slicer announces it: closed, complete, ready to send. */
export interface SlicedChunk {
  index: number;
  path: string;
  /** Absolute start within the source, in seconds (exact, from ffmpeg's segment list). */
  startS: number;
  durationS: number;
  bytes: number;
  /**
   * Seconds of the previous chunk's end the file starts with (CHUNK_OVERLAP_SECONDS), before `startS`; the
   * file holds leadS + durationS of audio. @default 0
   */
  leadS?: number;
}

/**
 * Chunk files as they are cut, one consumer: the slicer's run of ffmpeg, and each stage over it (byte cap,
 * overlap), hand chunks out in index order and count them against the look-ahead until released.
 */
export interface ChunkStream {
  /**
   * Each chunk the moment its file is closed. Breaking out stops the cutting. A chunk once handed out is the
   * consumer's to delete; on cancel every file not handed out is removed.
   */
  chunks: AsyncIterable<SlicedChunk>;
  /** The caller is done with a chunk (sent, or deleted): it no longer counts against the look-ahead. */
  release(index: number): void;
  /** Resolves after every chunk was handed out; rejects like the iterator. */
  done: Promise<{ count: number }>;
}
