import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import ffmpeg from 'fluent-ffmpeg';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { chunkEncoding } from './chunk-format.ts';
import type { ChunkFormat } from './chunk-format.ts';
import type { ChunkMode } from './chunk-recipe.ts';
import { parseSegmentListLine, removeChunkFiles, segmentPattern } from './chunk-files.ts';
import type { ChunkNaming } from './chunk-files.ts';
import { createRunClock } from './run-clock.ts';
import { outsideSignal, toolKilledError } from './run-process.ts';
import { sliceError, sliceOutputArgs } from './slice-outcome.ts';
import type { StopReason } from './slice-outcome.ts';
import type { ChunkStream, SlicedChunk } from './types.ts';

export interface SlicerDeps {
  logger: Logger;
  /** Limit on ffmpeg's running time; time spent paused by back-pressure does not count. */
  timeoutS: number;
  /** Note: fluent-ffmpeg keeps this path process-wide. @default 'ffmpeg' from PATH */
  ffmpegPath?: string;
}

export interface SliceOptions {
  input: string;
  /** Forced with `-f`: the demuxer the probe validated. */
  demuxer: string;
  /** Directory for the chunk files; the caller owns it. */
  outDir: string;
  /** From planSplits: strictly increasing seconds. */
  cutPoints: readonly number[];
  format: ChunkFormat;
  /** 'copy' writes the source's packets into `format` files unchanged (chooseChunkRecipe decides). @default 'encode' */
  mode?: ChunkMode;
  /** Chunks announced but not yet released before ffmpeg is paused (>= 1). */
  lookahead: number;
  maxDurationS: number;
  /**
   * The duration that really decodes (the validator's measurement). When the output ends more than
   * max(1 s, 1 %) short of it, the file was cut off mid-way and the slice fails with MEDIA_CORRUPT.
   */
  expectedDurationS?: number;
  /** @default 'chunk-' */
  filePrefix?: string;
  signal?: AbortSignal;
}

export interface SliceState {
  announced: number;
  unreleased: number;
  paused: boolean;
  finished: boolean;
}

/** The slicer's chunk stream, and where its ffmpeg is (tests watch the look-ahead with it). */
export interface SliceHandle extends ChunkStream {
  state(): SliceState;
}

export interface Slicer {
  slice(opts: SliceOptions): SliceHandle;
}

type Final = { error: AppError | null };

export function createSlicer(deps: SlicerDeps): Slicer {
  return { slice: (opts) => startSlice(deps, opts) };
}

function startSlice(deps: SlicerDeps, opts: SliceOptions): SliceHandle {
  if (!Number.isInteger(opts.lookahead) || opts.lookahead < 1)
    throw new TypeError(`Expected \`lookahead\` to be an integer >= 1, got \`${opts.lookahead}\``);
  opts.cutPoints.forEach((c, i) => {
    if (!(c > 0) || (i > 0 && !(c > (opts.cutPoints[i - 1] ?? 0))))
      throw new TypeError(
        `Expected \`cutPoints\` to be strictly increasing positive seconds, got \`${opts.cutPoints.join(',')}\``,
      );
  });
  const log = deps.logger.child({ component: 'slicer' });
  const enc = chunkEncoding(opts.format);
  const naming: ChunkNaming = { outDir: opts.outDir, prefix: opts.filePrefix ?? 'chunk-', extension: enc.extension };

  const queue: SlicedChunk[] = [];
  const unreleased = new Set<number>();
  const waiters: Array<() => void> = [];
  let announced = 0;
  let handedOut = 0;
  let lastEndS = 0;
  let proc: ChildProcess | undefined;
  let paused = false;
  let stopReason: StopReason | null = null;
  let internalError: AppError | null = null;
  let final: Final | null = null;
  let resolveDone!: (v: { count: number }) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<{ count: number }>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  // Nobody has to await `done`: the iterator reports the same error.
  done.catch(() => undefined);

  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  const alive = (): boolean => proc !== undefined && proc.exitCode === null && proc.signalCode === null;
  const clock = createRunClock(deps.timeoutS * 1000, () => stop('timeout'));

  function stop(reason: StopReason): void {
    if (final || stopReason) return;
    stopReason = reason;
    clock.stop();
    if (reason === 'cancelled' || reason === 'consumer') {
      // Chunks not yet handed out have no owner after this: they are removed with the partial file.
      for (const c of queue.splice(0)) unreleased.delete(c.index);
    }
    // SIGKILL also ends a SIGSTOPped process; a SIGTERM would wait for SIGCONT.
    if (alive()) proc?.kill('SIGKILL');
  }

  function updatePause(): void {
    if (!alive() || stopReason || final) return;
    const full = unreleased.size >= opts.lookahead;
    if (full && !paused) {
      proc?.kill('SIGSTOP');
      paused = true;
      clock.pause();
      log.debug({ unreleased: unreleased.size }, 'ffmpeg paused (look-ahead full)');
    } else if (!full && paused) {
      proc?.kill('SIGCONT');
      paused = false;
      clock.resume();
    }
  }

  function onListLine(line: string): void {
    if (stopReason || final) return;
    const entry = parseSegmentListLine(line);
    if (!entry) {
      log.warn({ line }, 'unexpected segment list line');
      return;
    }
    const file = path.resolve(opts.outDir, entry.file);
    let bytes: number;
    try {
      bytes = statSync(file).size;
    } catch (err) {
      internalError = new AppError('INTERNAL', `chunk file vanished: ${file}`, { cause: err });
      stop('internal');
      return;
    }
    const chunk: SlicedChunk = {
      index: announced,
      path: file,
      startS: entry.startS,
      durationS: Math.max(0, Math.round((entry.endS - entry.startS) * 1e6) / 1e6),
      bytes,
    };
    announced += 1;
    lastEndS = Math.max(lastEndS, entry.endS);
    queue.push(chunk);
    unreleased.add(chunk.index);
    updatePause();
    wake();
  }

  let finishing = false;
  async function finish(ffmpegError: Error | null, stderr: string): Promise<void> {
    if (finishing) return;
    finishing = true;
    clock.stop();
    paused = false;
    const killed = ffmpegError ? outsideSignal(proc?.signalCode ?? null, stopReason !== null) : null;
    if (killed) internalError ??= toolKilledError('ffmpeg', killed, `cutting chunks (${announced} cut)`);
    const error = sliceError({
      stopReason,
      internalError,
      ffmpegError,
      announced,
      lastEndS,
      expectedDurationS: opts.expectedDurationS,
      maxDurationS: opts.maxDurationS,
      timeoutS: deps.timeoutS,
      abortReason: opts.signal?.reason,
    });
    if (ffmpegError && !stopReason)
      log.warn({ err: ffmpegError.message, stderr: stderr.slice(-2000) }, 'ffmpeg failed while slicing');
    if (error) {
      // Chunks handed out belong to the consumer; after a failure the queued ones are still handed out.
      const cancelled = stopReason === 'cancelled' || stopReason === 'consumer';
      await removeChunkFiles(naming, cancelled ? handedOut : announced).catch((err: unknown) =>
        log.warn({ err }, 'chunk cleanup failed'),
      );
    }
    final = { error };
    opts.signal?.removeEventListener('abort', onAbort);
    if (error) rejectDone(error);
    else resolveDone({ count: announced });
    wake();
  }

  const onAbort = (): void => stop('cancelled');

  const chunks: AsyncIterable<SlicedChunk> = {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<SlicedChunk>> {
        for (;;) {
          const chunk = queue.shift();
          if (chunk) {
            handedOut = chunk.index + 1;
            return { done: false, value: chunk };
          }
          if (final) {
            if (final.error) throw final.error;
            return { done: true, value: undefined };
          }
          await new Promise<void>((res) => waiters.push(res));
        }
      },
      async return(): Promise<IteratorResult<SlicedChunk>> {
        stop('consumer');
        return { done: true, value: undefined };
      },
    }),
  };

  const handle: SliceHandle = {
    chunks,
    done,
    release(index) {
      if (unreleased.delete(index)) updatePause();
    },
    state: () => ({ announced, unreleased: unreleased.size, paused, finished: final !== null }),
  };

  if (opts.signal?.aborted) {
    stopReason = 'cancelled';
    void finish(null, '');
    return handle;
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const cmd = ffmpeg({ stdoutLines: 10 })
    .input(opts.input)
    .inputFormat(opts.demuxer)
    .inputOptions('-nostdin', '-hide_banner', '-nostats', '-v', 'error', '-protocol_whitelist', 'file')
    .output(segmentPattern(naming))
    .outputOptions(...sliceOutputArgs(opts, enc));
  if (deps.ffmpegPath) cmd.setFfmpegPath(deps.ffmpegPath);

  cmd.on('start', (commandLine: string) => {
    // fluent-ffmpeg sets ffmpegProc just before 'start' (lib/processor.js, processCB).
    proc = (cmd as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
    log.debug({ cmd: commandLine }, 'ffmpeg slice');
    if (stopReason) {
      proc?.kill('SIGKILL');
      return;
    }
    clock.start();
    if (proc?.stdout) createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', onListLine);
  });
  cmd.on('end', () => void finish(null, ''));
  cmd.on('error', (err: Error, _stdout: string | null, stderr: string | null) => void finish(err, stderr ?? ''));
  cmd.run();
  return handle;
}
