import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { runProcess } from './run-process.ts';
import type { Silence } from './split-planner.ts';

export interface SilenceDetectorDeps {
  logger: Logger;
  timeoutS: number;
  /** @default 'ffmpeg' (from PATH) */
  ffmpegPath?: string;
}

export interface DetectOptions {
  demuxer: string;
  /** Only this much of the file is scanned. */
  maxDurationS: number;
  /** Level under which audio counts as silence. @default -30 */
  noiseDb?: number;
  /** Shortest silence reported, in seconds. @default 0.3 */
  minSilenceS?: number;
  signal?: AbortSignal;
}

export interface SilenceDetector {
  detectSilences(file: string, opts: DetectOptions): Promise<Silence[]>;
}

const START = /silence_start:\s*(-?[\d.]+)/;
const END = /silence_end:\s*(-?[\d.]+)/;

/** Folds silencedetect's log lines into intervals; a silence still open at the end is dropped. */
export function createSilenceParser(): { push(line: string): void; result(): Silence[] } {
  const out: Silence[] = [];
  let open: number | null = null;
  return {
    push(line) {
      const s = START.exec(line);
      if (s?.[1]) {
        open = Math.max(0, Number(s[1]));
        return;
      }
      const e = END.exec(line);
      if (e?.[1] && open !== null) {
        const end = Number(e[1]);
        if (Number.isFinite(open) && Number.isFinite(end) && end >= open) out.push({ start: open, end });
        open = null;
      }
    },
    result: () => out,
  };
}

export function createSilenceDetector(deps: SilenceDetectorDeps): SilenceDetector {
  const bin = deps.ffmpegPath ?? 'ffmpeg';
  const log = deps.logger;
  return {
    async detectSilences(file, opts) {
      const noise = opts.noiseDb ?? -30;
      const d = opts.minSilenceS ?? 0.3;
      // Mono 8 kHz before the filter: ~15 % faster on a 2 h mp3, and speech pauses survive the downmix.
      const filter = `aresample=8000,aformat=channel_layouts=mono,silencedetect=noise=${noise}dB:d=${d}`;
      const args = ['-nostdin', '-hide_banner', '-nostats', '-v', 'info',
        '-f', opts.demuxer, '-protocol_whitelist', 'file', '-t', String(opts.maxDurationS), '-i', file,
        '-map', '0:a:0', '-vn', '-af', filter, '-f', 'null', '-'];
      log.debug({ cmd: bin, args }, 'ffmpeg silencedetect');
      const parser = createSilenceParser();
      const r = await runProcess(bin, args, {
        timeoutS: deps.timeoutS,
        signal: opts.signal,
        stderrTailBytes: 8 * 1024,
        onStderrLine: (line) => parser.push(line),
      });
      if (r.aborted) throw new AppError('CANCELLED', 'Silence detection was cancelled.', { cause: opts.signal?.reason });
      if (r.spawnError) throw new AppError('INTERNAL', `ffmpeg could not be started: ${r.spawnError.message}`, { cause: r.spawnError });
      if (r.timedOut) throw new AppError('MEDIA_CORRUPT', `Scanning the audio took longer than ${deps.timeoutS} s.`, { details: { reason: 'silence_timeout' } });
      if (r.code !== 0) {
        throw new AppError('MEDIA_CORRUPT', 'The audio could not be decoded for silence detection.', {
          details: { reason: 'decode_failed', ffmpeg: r.stderrTail.trim().split(/\r?\n/).pop() ?? '' },
        });
      }
      return parser.result();
    },
  };
}
