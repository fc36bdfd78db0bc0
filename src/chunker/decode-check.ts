import type { Logger } from 'pino';
import { AppError, withoutDirectories } from '../errors.ts';
import { mp3ByteAt, walkMp3Duration } from './mp3-duration.ts';
import { killedFromOutside, runProcess, toolKilledError } from './run-process.ts';
import type { RunResult } from './run-process.ts';

export interface DecodeCheckerDeps {
  logger: Logger;
  /** Wall-clock limit for one ffmpeg run. */
  timeoutS: number;
  /** @default 'ffmpeg' (from PATH) */
  ffmpegPath?: string;
  /** Seconds decoded at the start and at the end by `check`. @default 5 */
  windowS?: number;
}

export interface CheckOptions {
  /** From the probe; forced with `-f` so the file is read the way it was validated. */
  demuxer: string;
  /** The duration the container claims. */
  durationS: number;
  maxDurationS: number;
  signal?: AbortSignal;
  /**
   * An mp3's frame at a time, when already known (the walk done as the upload arrived; see mp3ByteAt): undefined
   * when it cannot say, and the file is walked.
   */
  mp3ByteAt?: (atS: number) => number | null | undefined;
}

export type CheckResult = { ok: true; decodedS: number } | { ok: false; reason: string };

export interface MeasureOptions {
  demuxer: string;
  maxDurationS: number;
  signal?: AbortSignal;
  /**
   * 'decode' runs the audio decoder over every frame (catches damaged data; ~6.5 s for 2 h of 128k mp3
   * here); 'demux' only reads packet timestamps (catches a header that lies about the length; ~0.5 s).
   * @default 'decode'
   */
  mode?: 'decode' | 'demux';
}

export interface MeasureResult {
  /** Seconds of the first audio stream that really decode (capped a little past maxDurationS). */
  decodedS: number;
  /** True when decoding went past maxDurationS (so the file is too long, whatever its header says). */
  overLimit: boolean;
  /** Error lines ffmpeg printed while decoding (damaged frames it skipped). */
  errorLines: number;
}

export interface DecodeChecker {
  check(file: string, opts: CheckOptions): Promise<CheckResult>;
  measureDecodedDuration(file: string, opts: MeasureOptions): Promise<MeasureResult>;
}

/** `out_time_us=` from `-progress`: the output position in seconds, or null for other lines. */
export function parseProgressLine(line: string): number | null {
  const m = /^out_time_us=(-?\d+)$/.exec(line.trim());
  if (!m?.[1]) return null;
  const us = Number(m[1]);
  // ffmpeg prints a huge negative value before the first frame.
  return Number.isFinite(us) && us > 0 ? us / 1e6 : 0;
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}

function noAudio(stderr: string): boolean {
  return /matches no streams/i.test(stderr);
}

const fmt = (s: number): string => s.toFixed(3);

interface DecodeRun {
  r: RunResult;
  decodedS: number;
  errorLines: number;
}

/** Decodes (or only demuxes) the first audio stream, optionally a window of it, and reports how far it got. */
type RunDeps = Pick<DecodeCheckerDeps, 'ffmpegPath' | 'timeoutS'> & { logger?: Logger };

async function decode(
  deps: RunDeps,
  file: string,
  demuxer: string,
  range: { ss?: number; skipBytes?: number; t: number; copy?: boolean },
  signal?: AbortSignal,
): Promise<DecodeRun> {
  const bin = deps.ffmpegPath ?? 'ffmpeg';
  let decodedS = 0;
  let errorLines = 0;
  const args = [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    '-nostats',
    '-progress',
    'pipe:1',
    '-f',
    demuxer,
    '-protocol_whitelist',
    'file',
    ...(range.skipBytes !== undefined ? ['-skip_initial_bytes', String(range.skipBytes)] : []),
    ...(range.ss !== undefined ? ['-ss', fmt(range.ss)] : []),
    '-t',
    fmt(range.t),
    '-i',
    file,
    '-map',
    '0:a:0',
    '-vn',
    '-c:a',
    range.copy ? 'copy' : 'pcm_s16le',
    '-f',
    'null',
    '-',
  ];
  deps.logger?.debug({ cmd: bin, args }, 'ffmpeg decode');
  const r = await runProcess(bin, args, {
    timeoutS: deps.timeoutS,
    signal,
    stderrTailBytes: 8 * 1024,
    onStdoutLine: (line) => {
      const t = parseProgressLine(line);
      if (t !== null && t > decodedS) decodedS = t;
    },
    onStderrLine: (line) => {
      if (line.trim() !== '') errorLines += 1;
    },
  });
  if (r.aborted) throw new AppError('CANCELLED', 'The decode check was cancelled.', { cause: signal?.reason });
  if (r.spawnError)
    throw new AppError('INTERNAL', `ffmpeg could not be started: ${r.spawnError.message}`, { cause: r.spawnError });
  // Read as the file's end, a kill would have measured a shorter recording or refused a sound one.
  const killed = killedFromOutside(r);
  if (killed) throw toolKilledError('ffmpeg', killed, 'decoding the audio');
  return { r, decodedS, errorLines };
}

async function measure(deps: RunDeps, file: string, opts: MeasureOptions): Promise<MeasureResult> {
  // An mp3's packets are its frames: walked in Node (2 h in ~0.1 s instead of ~0.6 s of ffmpeg), to the same
  // figure; a layout the walk is not sure of goes to the demuxer.
  if (opts.mode === 'demux' && opts.demuxer === 'mp3') {
    const walked = await walkMp3Duration(file, opts);
    if (walked.ok) return { decodedS: walked.seconds, overLimit: walked.overLimit, errorLines: 0 };
    deps.logger?.debug({ reason: walked.reason, atByte: walked.atByte }, 'mp3 frame walk gave way to ffmpeg');
  }
  // One second past the limit is enough to know the file is too long without reading all of it.
  const { r, decodedS, errorLines } = await decode(
    deps,
    file,
    opts.demuxer,
    { t: opts.maxDurationS + 1, copy: opts.mode === 'demux' },
    opts.signal,
  );
  if (r.timedOut) {
    throw new AppError('MEDIA_CORRUPT', `Decoding the audio took longer than ${deps.timeoutS} s.`, {
      details: { reason: 'decode_timeout', positionS: decodedS },
    });
  }
  if (r.code !== 0 && decodedS === 0) {
    if (noAudio(r.stderrTail))
      throw new AppError('UNSUPPORTED_MEDIA', 'The file has no audio stream.', {
        details: { reason: 'no_audio_stream' },
      });
    throw new AppError('MEDIA_CORRUPT', 'The audio could not be decoded.', {
      details: { reason: 'decode_failed', ffmpeg: withoutDirectories(lastLine(r.stderrTail)) },
    });
  }
  if (r.code !== 0)
    deps.logger?.warn(
      { code: r.code, decodedS, last: lastLine(r.stderrTail) },
      'ffmpeg failed part-way while measuring',
    );
  return { decodedS, overLimit: decodedS > opts.maxDurationS, errorLines };
}

/**
 * Seconds of audio that really decode, read up to one second past maxDurationS: how the validator
 * judges a tiny file that claims 10 h, or a header that lies. Throws UNSUPPORTED_MEDIA (no audio
 * stream) or MEDIA_CORRUPT (nothing decodes, or the time limit).
 */
export async function measureDecodedDuration(
  file: string,
  opts: MeasureOptions & { ffmpegPath?: string; timeoutS?: number; logger?: Logger },
): Promise<number> {
  const { decodedS } = await measure(
    { ffmpegPath: opts.ffmpegPath, timeoutS: opts.timeoutS ?? 600, logger: opts.logger },
    file,
    opts,
  );
  return decodedS;
}

export function createDecodeChecker(deps: DecodeCheckerDeps): DecodeChecker {
  const windowS = deps.windowS ?? 5;
  const log = deps.logger;

  return {
    async check(file, opts) {
      const claimed = Math.max(0, opts.durationS);
      const single = claimed <= 2 * windowS;
      const windows = single
        ? [
            {
              ss: undefined,
              t: Math.max(windowS, claimed + 1),
              expect: Math.min(claimed, windowS * 2),
              where: 'the file',
            },
          ]
        : [
            { ss: undefined, t: windowS, expect: windowS, where: 'the start' },
            { ss: claimed - windowS, t: windowS + 1, expect: windowS, where: `the claimed end (${fmt(claimed)} s)` },
          ];
      const frameAt = async (atS: number) => {
        const known = opts.mp3ByteAt?.(atS);
        return known !== undefined ? known : mp3ByteAt(file, atS, opts.signal);
      };
      // Every window ended before the check answers, a stopped one too (Promise.all would answer at the first
      // window stopped, the other's ffmpeg still being killed): the caller may remove the file next.
      const ended = await Promise.allSettled(
        windows.map(async (w) => {
          // An mp3 is read from the frame at the window's start, which a seek by time finds only by reading the
          // file from its start (0.15 s of CPU for 2 h against 0.04 s); the walk that finds the byte is 0.06 s.
          const skipBytes = w.ss !== undefined && opts.demuxer === 'mp3' ? await frameAt(w.ss) : null;
          const range = skipBytes === null ? w : { t: w.t, skipBytes };
          return decode(deps, file, opts.demuxer, range, opts.signal);
        }),
      );
      const runs = ended.map((run) => {
        if (run.status === 'rejected') throw run.reason;
        return run.value;
      });
      let decodedS = 0;
      for (const [i, w] of windows.entries()) {
        const run = runs[i];
        if (!run) continue;
        if (run.r.timedOut) return { ok: false, reason: `decoding ${w.where} took longer than ${deps.timeoutS} s` };
        const stderr = run.r.stderrTail;
        if (run.r.code !== 0) {
          return {
            ok: false,
            reason: noAudio(stderr)
              ? 'the file has no audio stream'
              : `ffmpeg could not decode ${w.where}: ${lastLine(stderr)}`,
          };
        }
        // Half the window: the last frame of a stream may be short, a VBR estimate may be a little off.
        if (run.decodedS < w.expect * 0.5) {
          const hint = w.ss === undefined ? '' : '; the header may overstate the duration';
          return { ok: false, reason: `only ${fmt(run.decodedS)} s of audio decodes at ${w.where}${hint}` };
        }
        if (run.errorLines > 0)
          log.warn(
            { where: w.where, errorLines: run.errorLines, last: lastLine(stderr) },
            'decode errors in a window that otherwise decodes',
          );
        decodedS += run.decodedS;
      }
      if (claimed > opts.maxDurationS)
        log.debug({ claimed, max: opts.maxDurationS }, 'claimed duration above the limit');
      return { ok: true, decodedS };
    },

    measureDecodedDuration: (file, opts) => measure(deps, file, opts),
  };
}
