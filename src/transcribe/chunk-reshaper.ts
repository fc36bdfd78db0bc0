import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { chunkEncoding, isChunkFormat, type ChunkFormat } from '../chunker/chunk-format.ts';
import { runProcess } from '../chunker/run-process.ts';
import { AppError } from '../errors.ts';

/** One piece of a chunk cut smaller: `offsetS` is where it starts inside the chunk. */
export interface ChunkPiece {
  path: string;
  offsetS: number;
  durationS: number;
}

/** Makes other bytes of one chunk file, next to it, for a provider that refused the original. */
export interface ChunkReshaper {
  /** The chunk in another codec (16 kHz mono), padded to at least MIN_AUDIO_S. The caller removes the file. */
  reencode(file: string, signal: AbortSignal): Promise<string>;
  /** The chunk cut into `parts` equal pieces in its own format. The caller removes the files. */
  split(file: string, durationS: number, parts: number, signal: AbortSignal): Promise<ChunkPiece[]>;
}

export interface ChunkReshaperOptions {
  logger: Logger;
  /** Per ffmpeg run. */
  timeoutS: number;
  /** @default 'ffmpeg' on PATH */
  ffmpegPath?: string;
}

/** OpenAI refuses audio under 0.1 s as too short; a second of trailing silence is harmless to any model. */
export const MIN_AUDIO_S = 1;

/** A lossless codec other than the chunk's own, so a decoder problem with one does not meet the other. */
function otherFormat(format: ChunkFormat): ChunkFormat {
  return format === 'flac' ? 'wav' : 'flac';
}

function formatOf(file: string): ChunkFormat {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (!isChunkFormat(ext)) throw new AppError('INTERNAL', `not a chunk file: ${path.basename(file)}`);
  return ext;
}

export function createChunkReshaper(options: ChunkReshaperOptions): ChunkReshaper {
  const { logger, timeoutS } = options;
  const ffmpeg = options.ffmpegPath ?? 'ffmpeg';

  /** Runs ffmpeg on a chunk file we wrote ourselves; the demuxer is forced and only files may be opened. */
  async function run(
    input: { file: string; format: ChunkFormat; args: readonly string[] },
    output: { file: string; args: readonly string[] },
    signal: AbortSignal,
  ): Promise<void> {
    const full = [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-protocol_whitelist',
      'file',
      '-f',
      chunkEncoding(input.format).muxer,
      ...input.args,
      '-i',
      input.file,
      '-map',
      '0:a:0',
      ...output.args,
      '-y',
      output.file,
    ];
    const r = await runProcess(ffmpeg, full, { timeoutS, signal });
    if (r.code === 0) return;
    await rm(output.file, { force: true });
    if (r.aborted) throw signal.reason;
    const why =
      r.spawnError?.message ?? (r.timedOut ? `timed out after ${timeoutS}s` : r.stderrTail.trim().slice(-500));
    throw new AppError('CHUNK_FAILED', `ffmpeg could not reshape ${path.basename(input.file)}: ${why}`);
  }

  return {
    async reencode(file, signal) {
      const from = formatOf(file);
      const to = chunkEncoding(otherFormat(from));
      const out = `${file}.reencoded.${to.extension}`;
      const args = ['-af', `apad=whole_dur=${MIN_AUDIO_S}`, ...to.codecArgs, '-f', to.muxer];
      await run({ file, format: from, args: [] }, { file: out, args }, signal);
      logger.debug({ file: path.basename(file), to: to.format }, 'chunk re-encoded');
      return out;
    },

    async split(file, durationS, parts, signal) {
      if (!Number.isInteger(parts) || parts < 2) throw new TypeError(`parts must be an integer >= 2, got ${parts}`);
      const format = formatOf(file);
      const enc = chunkEncoding(format);
      const step = durationS / parts;
      const pieces: ChunkPiece[] = [];
      try {
        for (let i = 0; i < parts; i++) {
          const offsetS = i * step;
          const out = `${file}.part${i}.${enc.extension}`;
          // Decoded and re-encoded rather than stream-copied: pieces then start exactly at offsetS, not at the
          // nearest mp3 frame, so their segment times add up.
          const span = i === parts - 1 ? [] : ['-t', step.toFixed(3)];
          const args = [...span, ...enc.codecArgs, '-f', enc.muxer];
          await run({ file, format, args: ['-ss', offsetS.toFixed(3)] }, { file: out, args }, signal);
          pieces.push({ path: out, offsetS, durationS: i === parts - 1 ? durationS - offsetS : step });
        }
      } catch (err) {
        await Promise.all(pieces.map((p) => rm(p.path, { force: true })));
        throw err;
      }
      logger.debug({ file: path.basename(file), parts }, 'chunk split');
      return pieces;
    },
  };
}
