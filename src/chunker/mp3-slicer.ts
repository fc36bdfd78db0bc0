import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { DiskFullError, saysNoSpace } from '../resources/disk-full.ts';
import { removeChunkFiles, segmentPattern, type ChunkNaming } from './chunk-files.ts';
import { Mp3ChunkGatherer, type ChunkRange } from './mp3-chunk-gatherer.ts';
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
 * The chunks at the first frame at or after each cut (or earlier, where a chunk would outgrow maxBytes), each
 * after the first starting with the last whole frames of the one before (leadS), each written once `room` lets
 * it (the look-ahead).
 */
async function* cutFrames(opts: Mp3SliceOptions, room: () => Promise<void>): AsyncGenerator<SlicedChunk> {
  const cuts = opts.cuts[Symbol.asyncIterator]();
  const input = await open(opts.input, 'r');
  const buf = Buffer.alloc(COPY_BLOCK);
  const g = new Mp3ChunkGatherer(opts);
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
