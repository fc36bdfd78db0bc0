import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { DiskFullError, saysNoSpace } from '../resources/disk-full.ts';
import { removeChunkFiles, segmentPattern, type ChunkNaming } from './chunk-files.ts';
import { mp3Frames, type Mp3Frame } from './mp3-frames.ts';
import { sliceError } from './slice-outcome.ts';
import type { ChunkStream, SlicedChunk } from './types.ts';

export interface Mp3SliceOptions {
  input: string;
  outDir: string;
  /** Strictly increasing seconds, as they are decided: the slicer waits for the next one only when it needs it. */
  cuts: AsyncIterable<number>;
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

/** Copies one chunk's byte range of the upload into its file: bytes [from, to), audio [startS, endS). */
async function writeChunk(
  opts: Pick<Mp3SliceOptions, 'input' | 'outDir' | 'signal'>,
  c: { index: number; from: number; to: number; startS: number; endS: number },
): Promise<SlicedChunk> {
  const file = segmentPattern(namingOf(opts)).replace('%05d', String(c.index).padStart(5, '0'));
  try {
    await pipeline(createReadStream(opts.input, { start: c.from, end: c.to - 1 }), createWriteStream(file), {
      signal: opts.signal,
    });
  } catch (err) {
    await rm(file, { force: true });
    if (opts.signal.aborted) throw cancelledError(opts);
    if (err instanceof Error && saysNoSpace(err.message)) throw new DiskFullError('chunk files', err);
    throw err;
  }
  const round = (s: number): number => Math.round(s * 1e6) / 1e6;
  const bytes = (await stat(file)).size;
  return { index: c.index, path: file, startS: round(c.startS), durationS: round(c.endS - c.startS), bytes };
}

/** The chunks at the first frame at or after each cut, each written once `room` lets it (the look-ahead). */
async function* cutFrames(opts: Mp3SliceOptions, room: () => Promise<void>): AsyncGenerator<SlicedChunk> {
  const cuts = opts.cuts[Symbol.asyncIterator]();
  try {
    let next = await cuts.next();
    let index = 0;
    let first: { frame: Mp3Frame; startS: number } | null = null;
    let t = 0;
    let end = 0;
    for await (const frame of mp3Frames(opts.input)) {
      if (opts.signal.aborted) throw cancelledError(opts);
      if (t >= opts.maxDurationS) break;
      if (first && !next.done && t >= next.value - 1e-6) {
        await room();
        yield await writeChunk(opts, {
          index,
          from: first.frame.offset,
          to: frame.offset,
          startS: first.startS,
          endS: t,
        });
        index += 1;
        first = null;
        next = await cuts.next();
      }
      first ??= { frame, startS: t };
      t += frame.samples / frame.sampleRate;
      end = frame.offset + frame.size;
    }
    if (first) {
      await room();
      yield await writeChunk(opts, { index, from: first.frame.offset, to: end, startS: first.startS, endS: t });
      index += 1;
    }
    const error = sliceError({
      stopReason: null,
      internalError: null,
      ffmpegError: null,
      announced: index,
      lastEndS: t,
      expectedDurationS: opts.expectedDurationS,
      maxDurationS: opts.maxDurationS,
      timeoutS: 0,
      abortReason: undefined,
    });
    if (error) throw error;
  } finally {
    // Cuts past the end (or after a failure) are not needed: planning them stops.
    await cuts.return?.();
  }
}

/**
 * An mp3 cut into chunk files of its own frames, without ffmpeg: each chunk is one byte range of the upload (its
 * tag and Xing/Info frame left out), cut at the first frame that starts at or after each cut, so a chunk's start
 * and length are exact sums of frame lengths. Unlike the segment muxer it needs no cut list up front: a cut is
 * asked for only when the frames reach it, so the first chunk goes out while later cuts are still planned.
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
