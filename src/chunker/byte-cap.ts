import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { DiskFullError, saysNoSpace } from '../resources/disk-full.ts';
import { chunkEncoding, isChunkFormat } from './chunk-format.ts';
import { parseSegmentListLine } from './chunk-files.ts';
import { runProcess } from './run-process.ts';
import type { ChunkStream, SlicedChunk } from './types.ts';

export interface ByteCapOptions {
  /** The provider's request cap; Infinity passes every chunk through. */
  maxBytes: number;
  logger: Logger;
  /** Per ffmpeg run. */
  timeoutS: number;
  signal?: AbortSignal;
  /** @default 'ffmpeg' on PATH */
  ffmpegPath?: string;
}

/** Pieces are cut to fill at most this share of the cap: packets do not fall exactly on the planned times. */
const FILL = 0.9;
/** A piece this short is not cut further (a few packets); it is sent as it is. */
const MIN_PIECE_S = 1;

/** Pure: how many equal pieces a chunk of `bytes` is cut into so each stays under the cap (1: keep it). */
export function piecesFor(bytes: number, maxBytes: number): number {
  if (!(bytes > maxBytes)) return 1;
  return Math.ceil(bytes / (maxBytes * FILL));
}

/**
 * Cuts one chunk file into `parts` pieces of its own format without re-encoding (segment muxer, packets
 * copied), next to it. The pieces' starts are the chunk's start plus the segment list's exact offsets.
 */
async function cutChunk(chunk: SlicedChunk, parts: number, opts: ByteCapOptions): Promise<SlicedChunk[]> {
  const ext = path.extname(chunk.path).slice(1);
  if (!isChunkFormat(ext)) throw new AppError('INTERNAL', `not a chunk file: ${path.basename(chunk.path)}`);
  const muxer = chunkEncoding(ext).muxer;
  const step = chunk.durationS / parts;
  const times = Array.from({ length: parts - 1 }, (_, i) => ((i + 1) * step).toFixed(3)).join(',');
  const stem = chunk.path.slice(0, -ext.length - 1);
  const entries: Array<{ file: string; startS: number; endS: number }> = [];
  const args = [
    '-nostdin',
    '-hide_banner',
    '-nostats',
    '-v',
    'error',
    '-f',
    muxer,
    '-protocol_whitelist',
    'file',
    '-i',
    chunk.path,
    '-map',
    '0:a:0',
    '-c',
    'copy',
    '-f',
    'segment',
    '-segment_format',
    muxer,
    '-segment_times',
    times,
    '-reset_timestamps',
    '1',
    '-segment_list',
    'pipe:1',
    '-segment_list_type',
    'csv',
    '-y',
    `${stem}-p%03d.${ext}`,
  ];
  opts.logger.debug({ cmd: opts.ffmpegPath ?? 'ffmpeg', args }, 'ffmpeg split oversized chunk');
  const r = await runProcess(opts.ffmpegPath ?? 'ffmpeg', args, {
    timeoutS: opts.timeoutS,
    signal: opts.signal,
    onStdoutLine: (line) => {
      const e = parseSegmentListLine(line);
      if (e) entries.push(e);
    },
  });
  const files = entries.map((e) => path.resolve(path.dirname(chunk.path), e.file));
  if (r.aborted || r.code !== 0 || entries.length === 0) {
    await Promise.all(files.map((f) => rm(f, { force: true })));
    if (r.aborted) throw new AppError('CANCELLED', 'Splitting a chunk was cancelled.', { cause: opts.signal?.reason });
    if (saysNoSpace(r.stderrTail)) throw new DiskFullError('chunk files', new Error(r.stderrTail.trim()));
    throw new AppError(
      'INTERNAL',
      `chunk ${chunk.index} could not be split: ${r.spawnError?.message ?? r.stderrTail.trim().split('\n').pop() ?? ''}`,
    );
  }
  return Promise.all(
    entries.map(async (e, i) => ({
      index: chunk.index,
      path: files[i] ?? '',
      startS: Math.round((chunk.startS + e.startS) * 1e6) / 1e6,
      durationS: Math.max(0, Math.round((e.endS - e.startS) * 1e6) / 1e6),
      bytes: (await stat(files[i] ?? '')).size,
    })),
  );
}

/** The chunk as pieces that each fit the cap (cut again while one does not and is longer than MIN_PIECE_S). */
async function fit(chunk: SlicedChunk, opts: ByteCapOptions): Promise<SlicedChunk[]> {
  const parts = piecesFor(chunk.bytes, opts.maxBytes);
  if (parts === 1 || chunk.durationS / parts < MIN_PIECE_S) return [chunk];
  opts.logger.info(
    { chunk: chunk.index, bytes: chunk.bytes, maxBytes: opts.maxBytes, parts },
    'chunk over the byte cap: splitting it',
  );
  const pieces = await cutChunk(chunk, parts, opts);
  await rm(chunk.path, { force: true });
  const out: SlicedChunk[] = [];
  for (const p of pieces) out.push(...(await fit(p, opts)));
  return out;
}

/**
 * The slicer's chunks with every chunk over the provider's byte cap cut again into pieces under it, so none
 * is sent only to be refused. Pieces are numbered on: the consumer sees consecutive indexes and exact starts,
 * and its release of the last piece of a source chunk releases that chunk to the slicer's look-ahead.
 */
export function capChunkBytes(inner: ChunkStream, opts: ByteCapOptions): ChunkStream {
  if (!Number.isFinite(opts.maxBytes)) return inner;
  /** Index handed out -> the slicer's index. */
  const source = new Map<number, number>();
  const open = new Map<number, number>();
  let next = 0;
  let resolveDone!: (v: { count: number }) => void;
  let rejectDone!: (e: unknown) => void;
  // Resolves once every piece was handed out (the slicer's own `done` comes before the last chunk is split).
  const done = new Promise<{ count: number }>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  inner.done.catch((err: unknown) => rejectDone(err));
  done.catch(() => undefined);
  const chunks: AsyncIterable<SlicedChunk> = {
    async *[Symbol.asyncIterator]() {
      let unsent: SlicedChunk[] = [];
      try {
        for await (const chunk of inner.chunks) {
          unsent = await fit(chunk, opts);
          open.set(chunk.index, unsent.length);
          while (unsent.length > 0) {
            const piece = unsent.shift() as SlicedChunk;
            source.set(next, chunk.index);
            next += 1;
            yield { ...piece, index: next - 1 };
          }
        }
        resolveDone({ count: next });
      } catch (err) {
        rejectDone(err);
        throw err;
      } finally {
        // The consumer stopped between the pieces of one chunk: the rest have no owner.
        await Promise.all(unsent.map((p) => rm(p.path, { force: true })));
      }
    },
  };
  return {
    chunks,
    done,
    release(index) {
      const src = source.get(index);
      if (src === undefined) return;
      source.delete(index);
      const left = (open.get(src) ?? 1) - 1;
      if (left > 0) {
        open.set(src, left);
        return;
      }
      open.delete(src);
      inner.release(src);
    },
  };
}
