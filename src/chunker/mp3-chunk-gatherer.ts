import type { Mp3FrameRun } from './mp3-frame-run.ts';

/** One chunk as a byte range of the upload: bytes [from, to) hold leadS of the chunk before, then [startS, endS). */
export interface ChunkRange {
  index: number;
  from: number;
  to: number;
  leadS: number;
  startS: number;
  endS: number;
}

/**
 * The frames read so far, as chunks: the one being gathered (where its bytes begin, its lead's first frame
 * included; its own frames) and the last frames read, as many as a lead takes (the next chunk's lead).
 */
export class Mp3ChunkGatherer {
  t = 0;
  end = 0;
  index = 0;
  chunk: { from: number; leadS: number; startS: number; frames: number } | null = null;
  leadFrames = 0;
  // The last leadFrames frames read (a ring of numbers, no object per frame): where each starts, its seconds.
  #recentOffsets = new Float64Array(0);
  #recentSeconds = new Float64Array(0);
  #next = 0;

  readonly leadS: number;
  readonly maxBytes: number;

  constructor(opts: { leadS?: number; maxBytes?: number }) {
    this.leadS = opts.leadS ?? 0;
    this.maxBytes = opts.maxBytes ?? Infinity;
  }

  /** Whether the chunk, with frame `i` of `run`, would pass maxBytes while holding more of its own audio than its lead. */
  overflows(run: Mp3FrameRun, i: number): boolean {
    return this.chunk !== null && run.end(i) - this.chunk.from > this.maxBytes && this.chunk.frames > this.leadFrames;
  }

  /** The chunk ending before the frame at `offset`; the next one starts there, after the last frames of this one as its lead. */
  close(offset: number): ChunkRange {
    const chunk = this.chunk ?? { from: offset, leadS: 0, startS: this.t, frames: 0 };
    const range = { index: this.index, ...chunk, to: offset, endS: this.t };
    this.index += 1;
    // The lead: the last `taken` frames of the ring, oldest first.
    const taken = Math.min(this.leadFrames, chunk.frames);
    let from = offset;
    let leadS = 0;
    for (let k = taken; k > 0; k--) {
      const j = (this.#next - k + this.leadFrames) % this.leadFrames;
      if (k === taken) from = this.#recentOffsets[j] ?? offset;
      leadS += this.#recentSeconds[j] ?? 0;
    }
    this.chunk = { from, leadS, startS: this.t, frames: 0 };
    return range;
  }

  /** The last chunk, up to the last frame read, if any frame was read since the last cut. */
  rest(): ChunkRange | null {
    if (!this.chunk) return null;
    const range = { index: this.index, ...this.chunk, to: this.end, endS: this.t };
    this.index += 1;
    this.chunk = null;
    return range;
  }

  /** Frame `i` of `run` read, into the chunk being gathered. */
  add(run: Mp3FrameRun, i: number): void {
    const seconds = run.seconds(i);
    const offset = run.offsets[i] ?? 0;
    if (this.leadS > 0 && this.leadFrames === 0) {
      this.leadFrames = Math.max(1, Math.round(this.leadS / seconds));
      this.#recentOffsets = new Float64Array(this.leadFrames);
      this.#recentSeconds = new Float64Array(this.leadFrames);
    }
    this.chunk ??= { from: offset, leadS: 0, startS: this.t, frames: 0 };
    this.chunk.frames += 1;
    if (this.leadFrames > 0) {
      this.#recentOffsets[this.#next] = offset;
      this.#recentSeconds[this.#next] = seconds;
      this.#next = (this.#next + 1) % this.leadFrames;
    }
    this.t += seconds;
    this.end = run.end(i);
  }
}
