import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { DiskFullError, saysNoSpace } from '../resources/disk-full.ts';
import { removeChunkFiles, segmentPattern, type ChunkNaming } from './chunk-files.ts';
import type { Mp3FrameRun } from './mp3-frame-run.ts';
import { mp3FrameRuns } from './mp3-frames.ts';
import { readAhead } from './read-ahead.ts';
import { sliceError } from './slice-outcome.ts';
import type { ChunkStream, SlicedChunk } from './types.ts';

export interface Mp3SliceOptions {
  input: string;
  outDir: string;
  /** Strictly increasing seconds, as they are decided: the slicer waits for the next one only when it needs it. */
  cuts: AsyncIterable<number>;
  /**
   * Seconds of the chunk before that each chunk after the first starts with, as whole frames (the plan's overlap,
   * see mp3LeadSeconds). @default 0
   */
  leadS?: number;
  /** No chunk file (its lead included) grows past this: a cut is made early instead. @default Infinity */
  maxBytes?: number;
  /** Chunks handed out and not yet released before cutting waits (>= 1). */
  lookahead: number;
  maxDurationS: number;
  /** As the ffmpeg slicer's: a file that ends more than max(1 s, 1 %) short of it fails as truncated. */
  expectedDurationS?: number;
  signal: AbortSignal;
  logger: Logger;
}

const namingOf = (opts: Pick<Mp3SliceOptions, 'outDir'>): ChunkNaming => ({
  outDir: opts.outDir,
  prefix: 'chunk-',
  extension: 'mp3',
});

const cancelledError = (opts: Pick<Mp3SliceOptions, 'signal'>): AppError =>
  new AppError('CANCELLED', 'Slicing was cancelled.', { cause: opts.signal.reason });

/** Bytes copied at a time, through one buffer for the whole run (no garbage per chunk). */
const COPY_BLOCK = 256 * 1024;

/**
 * Runs of frames (one per MP3_FRAMES_BLOCK read, split at MP3_RUN_FRAMES) walked ahead of the cutting: 8 MiB of
 * the file, ~9 min at 128 kb/s (at least ~13 min at any bitrate), so the frames up to the first cuts are known by
 * the time the cuts are. Held at most, with the run being cut: 9 runs of 56 KiB (Mp3FrameRun), at any bitrate.
 */
const FRAME_RUNS_AHEAD = 8;

/** One chunk as a byte range of the upload: bytes [from, to) hold leadS of the chunk before, then [startS, endS). */
interface ChunkRange {
  index: number;
  from: number;
  to: number;
  leadS: number;
  startS: number;
  endS: number;
}

/** Copies one chunk's byte range of the upload into its file. */
async function writeChunk(
  opts: Pick<Mp3SliceOptions, 'outDir' | 'signal'>,
  input: FileHandle,
  buf: Buffer,
  c: ChunkRange,
): Promise<SlicedChunk> {
  const file = segmentPattern(namingOf(opts)).replace('%05d', String(c.index).padStart(5, '0'));
  try {
    const out = await open(file, 'w');
    try {
      for (let pos = c.from; pos < c.to;) {
        if (opts.signal.aborted) throw cancelledError(opts);
        const { bytesRead } = await input.read(buf, 0, Math.min(buf.length, c.to - pos), pos);
        if (bytesRead === 0) throw new AppError('INTERNAL', `the upload ended before byte ${c.to}`);
        await out.write(buf, 0, bytesRead);
        pos += bytesRead;
      }
    } finally {
      await out.close();
    }
  } catch (err) {
    await rm(file, { force: true });
    if (opts.signal.aborted) throw cancelledError(opts);
    if (err instanceof Error && saysNoSpace(err.message)) throw new DiskFullError('chunk files', err);
    throw err;
  }
  const round = (s: number): number => Math.round(s * 1e6) / 1e6;
  return {
    index: c.index,
    path: file,
    startS: round(c.startS),
    durationS: round(c.endS - c.startS),
    bytes: c.to - c.from,
    ...(c.leadS > 0 ? { leadS: c.leadS } : {}),
  };
}

/**
 * The frames read so far, as chunks: the one being gathered (where its bytes begin, its lead's first frame
 * included; its own frames) and the last frames read, as many as a lead takes (the next chunk's lead).
 */
class Gatherer {
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

  constructor(opts: Pick<Mp3SliceOptions, 'leadS' | 'maxBytes'>) {
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

/**
 * The chunks at the first frame at or after each cut (or earlier, where a chunk would outgrow maxBytes), each
 * after the first starting with the last whole frames of the one before (leadS), each written once `room` lets
 * it (the look-ahead).
 */
async function* cutFrames(opts: Mp3SliceOptions, room: () => Promise<void>): AsyncGenerator<SlicedChunk> {
  const cuts = opts.cuts[Symbol.asyncIterator]();
  const input = await open(opts.input, 'r');
  const buf = Buffer.alloc(COPY_BLOCK);
  const g = new Gatherer(opts);
  // The frames are walked while the first cut is still being planned (and later ones while chunks are written),
  // so a cut, once known, waits only for its chunk's copy: the walk of the 300 s before it took ~30 ms of it.
  const frames = readAhead(mp3FrameRuns(opts.input), { max: FRAME_RUNS_AHEAD });
  try {
    let next = await cuts.next();
    outer: for await (const run of frames) {
      if (opts.signal.aborted) throw cancelledError(opts);
      for (let i = 0; i < run.length; i++) {
        if (g.t >= opts.maxDurationS) break outer;
        const planned = g.chunk !== null && !next.done && g.t >= next.value - 1e-6;
        if (planned || g.overflows(run, i)) {
          if (!planned)
            opts.logger.info({ chunk: g.index, maxBytes: g.maxBytes }, 'mp3 chunk would pass the byte cap: cut early');
          await room();
          yield await writeChunk(opts, input, buf, g.close(run.offsets[i] ?? 0));
          if (planned) next = await cuts.next();
        }
        g.add(run, i);
      }
    }
    const rest = g.rest();
    if (rest) {
      await room();
      yield await writeChunk(opts, input, buf, rest);
    }
    const error = sliceError({
      stopReason: null,
      internalError: null,
      ffmpegError: null,
      announced: g.index,
      lastEndS: g.t,
      expectedDurationS: opts.expectedDurationS,
      maxDurationS: opts.maxDurationS,
      timeoutS: 0,
      abortReason: undefined,
    });
    if (error) throw error;
  } finally {
    frames.stop();
    await input.close();
    // Cuts past the end (or after a failure) are not needed: planning them stops.
    await cuts.return?.();
  }
}

/**
 * An mp3 cut into chunk files of its own frames, without ffmpeg: each chunk is one byte range of the upload (its
 * tag and Xing/Info frame left out), cut at the first frame that starts at or after each cut, so a chunk's start
 * and length are exact sums of frame lengths. Unlike the segment muxer it needs no cut list up front: a cut is
 * asked for only when the frames reach it, so the first chunk goes out while later cuts are still planned. A
 * chunk's lead (the overlap) is the same byte range widened to the frames before its cut: one copy, no second
 * pass over the file to join it.
 */
export function sliceMp3(opts: Mp3SliceOptions): ChunkStream {
  const naming = namingOf(opts);
  const unreleased = new Set<number>();
  let wake: (() => void) | null = null;
  let handedOut = 0;
  let resolveDone!: (v: { count: number }) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<{ count: number }>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined);

  const cancelled = (): AppError => cancelledError(opts);
  /** Until fewer than `lookahead` chunks are out, or the job is cancelled. */
  const room = async (): Promise<void> => {
    while (unreleased.size >= opts.lookahead) {
      if (opts.signal.aborted) throw cancelled();
      await new Promise<void>((res) => {
        const onAbort = (): void => res();
        wake = () => {
          opts.signal.removeEventListener('abort', onAbort);
          res();
        };
        opts.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  };

  const chunks: AsyncIterable<SlicedChunk> = {
    async *[Symbol.asyncIterator]() {
      let failed = false;
      try {
        for await (const chunk of cutFrames(opts, room)) {
          unreleased.add(chunk.index);
          handedOut = chunk.index + 1;
          yield chunk;
        }
        resolveDone({ count: handedOut });
      } catch (err) {
        failed = true;
        rejectDone(err);
        throw err;
      } finally {
        // A failed or cancelled run leaves no file that was not handed out.
        if (failed || opts.signal.aborted)
          await removeChunkFiles(naming, handedOut).catch((err: unknown) =>
            opts.logger.warn({ err }, 'chunk cleanup failed'),
          );
      }
    },
  };
  return {
    chunks,
    done,
    release(index) {
      if (!unreleased.delete(index)) return;
      const w = wake;
      wake = null;
      w?.();
    },
  };
}
