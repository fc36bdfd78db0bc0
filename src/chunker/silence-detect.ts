import type { Logger } from 'pino';
import { AppError, withoutDirectories } from '../errors.ts';
import { killedFromOutside, runProcess, toolKilledError } from './run-process.ts';
import { createScanSlots, type ScanSlots } from './scan-slots.ts';
import type { ScanWindow, Silence } from './cut-points.ts';
import { heardEdgeS, inPieces } from './scan-pieces.ts';
import { nearThenWideGraph, nearThenWide, pastNear, type NearAndWide, type NearOrWide } from './near-or-wide.ts';

export interface SilenceDetectorDeps {
  logger: Logger;
  timeoutS: number;
  /** @default 'ffmpeg' (from PATH) */
  ffmpegPath?: string;
  /**
   * ffmpeg runs a windowed scan something waits for is split into (one decoder each: one per core is what
   * helps); every run takes a slot first. @default 1
   */
  parallelRuns?: number;
  /**
   * The decoder slots, shared by every scan of this detector (all jobs') and of the detectors given the same
   * (other backends'): further runs wait, those something waits for first. @default parallelRuns of its own
   */
  slots?: ScanSlots;
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
  /**
   * A windowed scan ahead of need (cut points nothing waits for yet): it waits for a free decoder slot behind the
   * scans something waits for, and runs as one ffmpeg (per WINDOWS_PER_RUN windows) instead of one per slot.
   */
  ahead?: boolean;
  /**
   * Runs of the same plan's scans asked at the same moment, holding cores: a scan something waits for is split
   * across the cores they leave (at least one run). @default 0
   */
  besideRuns?: number;
}

export interface SilenceDetector {
  detectSilences(file: string, opts: DetectOptions): Promise<Silence[]>;
  /**
   * The silences inside each window, in the file's times: only those stretches are decoded. Exact only for
   * a file that seeks exactly (see seeksExactly); windows must lie inside the file.
   */
  detectInWindows(file: string, windows: readonly ScanWindow[], opts: DetectOptions): Promise<Silence[][]>;
  /**
   * detectInWindows' silences of each target's near window, and of its wide window where the near one held
   * none, in one ffmpeg per target (or per run of targets, ahead of need): the near windows are decoded first,
   * and the run stops there when each of them held a pause, so a wide window costs nothing where it is not
   * needed and no second process where it is.
   */
  detectNearOrWide(file: string, targets: readonly NearAndWide[], opts: DetectOptions): Promise<NearOrWide[]>;
}

/** Mono 8 kHz before the filter: ~15 % faster on a 2 h mp3, and speech pauses survive the downmix. */
const DOWNMIX = 'aresample=8000,aformat=channel_layouts=mono';

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

/** Windows per ffmpeg run: each is one more input (an open file and a decoder) in that process. */
export const WINDOWS_PER_RUN = 32;

/**
 * Pure: `[from, to)` index ranges of `count` windows in runs of at most `perRun`, at least `parallel` of
 * them when there are that many windows, as even as can be.
 */
export function windowBatches(count: number, parallel: number, perRun = WINDOWS_PER_RUN): Array<[number, number]> {
  if (count <= 0) return [];
  const runs = Math.min(count, Math.max(parallel, Math.ceil(count / perRun)));
  return Array.from({ length: runs }, (_, i) => [Math.floor((i * count) / runs), Math.floor(((i + 1) * count) / runs)]);
}

/**
 * Pure: the silences of each window, from the silences found in the windows played one after another
 * (window k occupies [offset_k, offset_k + length_k) of that timeline). A silence running over a join is
 * split there, and a piece shorter than minSilenceS is dropped: only its window's side of it was heard.
 */
export function splitByWindows(
  joined: readonly Silence[],
  windows: ReadonlyArray<{ fromS: number; toS: number }>,
  minSilenceS: number,
): Silence[][] {
  let offset = 0;
  return windows.map((w) => {
    const len = Math.max(0, w.toS - w.fromS);
    const begin = offset;
    offset += len;
    const whole = (x: Silence): boolean => x.start >= begin && x.end <= begin + len;
    return joined
      .filter((x) => x.end > begin && x.start < begin + len)
      .map((x) => ({ start: Math.max(x.start, begin), end: Math.min(x.end, begin + len), whole: whole(x) }))
      .filter((x) => x.whole || x.end - x.start >= minSilenceS)
      .map((x) => ({ start: w.fromS + (x.start - begin), end: w.fromS + (x.end - begin) }));
  });
}

const detectOf = (opts: DetectOptions): string =>
  `silencedetect=noise=${opts.noiseDb ?? -30}dB:d=${opts.minSilenceS ?? 0.3}`;
const filterOf = (opts: DetectOptions): string => `${DOWNMIX},${detectOf(opts)}`;
const input = (file: string, opts: DetectOptions, range: string[]): string[] => [
  '-f',
  opts.demuxer,
  '-protocol_whitelist',
  'file',
  ...range,
  '-i',
  file,
];
/**
 * A window of the file as an input of its own: -ss before -i reads from the nearest seek point and decodes
 * from fromS on. A constant-bitrate mp3 seeks by its bitrate with fastseek, to within a frame (26 ms), in
 * constant time; without it ffmpeg reads every frame header up to the window, so the scan grew with the
 * square of the length.
 */
const windowInput = (file: string, opts: DetectOptions, w: ScanWindow): string[] =>
  input(file, opts, [
    ...(opts.demuxer === 'mp3' ? ['-fflags', '+fastseek'] : []),
    ...['-ss', w.fromS.toFixed(3), '-t', Math.max(0, w.toS - w.fromS).toFixed(3)],
  ]);
const clip = (w: ScanWindow, opts: DetectOptions): ScanWindow => ({
  fromS: w.fromS,
  toS: Math.min(w.toS, opts.maxDurationS),
});

/** The detector's one way to run ffmpeg's silencedetect, its runs numbered to pair their log lines. */
function createRunner(deps: SilenceDetectorDeps) {
  const bin = deps.ffmpegPath ?? 'ffmpeg';
  const log = deps.logger;
  let runs = 0;
  /**
   * One ffmpeg silencedetect run; `settle` (asked as each silence is reported) stops it early: what was found
   * so far is then the answer.
   */
  return async function run(
    inputs: string[],
    map: string[],
    opts: DetectOptions,
    settle?: (found: readonly Silence[]) => boolean,
  ): Promise<Silence[]> {
    const args = ['-nostdin', '-hide_banner', '-nostats', '-v', 'info', ...inputs, ...map, '-vn', '-f', 'null', '-'];
    const id = ++runs;
    log.debug({ cmd: bin, args, run: id }, 'ffmpeg silencedetect');
    const parser = createSilenceParser();
    const settled = new AbortController();
    const started = performance.now();
    const r = await runProcess(bin, args, {
      timeoutS: deps.timeoutS,
      signal: opts.signal ? AbortSignal.any([opts.signal, settled.signal]) : settled.signal,
      stderrTailBytes: 8 * 1024,
      // A scan ahead of need yields the cores to what something waits for (chunks cut and sent, the next scans).
      lowPriority: opts.ahead ?? false,
      onStderrLine: (line) => {
        const before = parser.result().length;
        parser.push(line);
        if (settle && !settled.signal.aborted && parser.result().length > before && settle(parser.result()))
          settled.abort();
      },
    });
    // With the start line above, when each scan ran (bench/trace.ts shows both).
    log.debug(
      { run: id, ms: Math.round(performance.now() - started), code: r.code, settled: settled.signal.aborted },
      'ffmpeg silencedetect ended',
    );
    if (settled.signal.aborted && !opts.signal?.aborted) return parser.result();
    if (r.aborted) throw new AppError('CANCELLED', 'Silence detection was cancelled.', { cause: opts.signal?.reason });
    if (r.spawnError)
      throw new AppError('INTERNAL', `ffmpeg could not be started: ${r.spawnError.message}`, { cause: r.spawnError });
    if (r.timedOut)
      throw new AppError('MEDIA_CORRUPT', `Scanning the audio took longer than ${deps.timeoutS} s.`, {
        details: { reason: 'silence_timeout' },
      });
    const killed = killedFromOutside(r);
    if (killed) throw toolKilledError('ffmpeg', killed, 'scanning the audio for silences');
    if (r.code !== 0) {
      throw new AppError('MEDIA_CORRUPT', 'The audio could not be decoded for silence detection.', {
        details: {
          reason: 'decode_failed',
          ffmpeg: withoutDirectories(r.stderrTail.trim().split(/\r?\n/).pop() ?? ''),
        },
      });
    }
    return parser.result();
  };
}

export function createSilenceDetector(deps: SilenceDetectorDeps): SilenceDetector {
  const parallel = Math.max(1, Math.floor(deps.parallelRuns ?? 1));
  const slots = deps.slots ?? createScanSlots(parallel);
  const run = createRunner(deps);
  /**
   * `items` scanned in runs of at most `perRun`: a scan something waits for is split across the cores the scans
   * asked beside it leave (`besideRuns`; decoding is the whole cost, ~1000x real time a core for a 128k mp3), one
   * ahead of need is not. Not across all of them: each ffmpeg costs ~0.06 s of CPU to start (the dynamic linking of
   * its ~200 libraries), and a job's first two scans are asked at once (cuts-in-order.ts), the first target's and
   * the next two's. On two cores the next two share one run beside the first instead of two runs that take the
   * cores from it: in continuous sound a job's ffmpeg CPU fell by one start (~70 ms). Other jobs' scans are not
   * counted: a split fixed when asked would outlast them.
   */
  async function inRuns<T, R>(
    items: readonly T[],
    opts: DetectOptions,
    perRun: number,
    scan: (batch: readonly T[]) => Promise<R[]>,
  ): Promise<R[]> {
    const ahead = opts.ahead ?? false;
    const cores = ahead ? 1 : Math.max(1, parallel - Math.max(0, Math.floor(opts.besideRuns ?? 0)));
    const batches = windowBatches(items.length, cores, perRun);
    const out = await Promise.all(batches.map(([from, to]) => slots.run(() => scan(items.slice(from, to)), ahead)));
    return out.flat();
  }

  return {
    detectSilences(file, opts) {
      return run(input(file, opts, ['-t', String(opts.maxDurationS)]), ['-map', '0:a:0', '-af', filterOf(opts)], opts);
    },

    async detectInWindows(file, windows, opts) {
      const minSilenceS = opts.minSilenceS ?? 0.3;
      const scan = async (batch: readonly ScanWindow[]): Promise<Silence[][]> => {
        const clipped = batch.map((w) => clip(w, opts));
        // Each window is an input seeked on its own; concat plays them one after another into a single silencedetect.
        const inputs = clipped.flatMap((w) => windowInput(file, opts, w));
        const graph = `${clipped.map((_, j) => `[${j}:a:0]`).join('')}concat=n=${clipped.length}:v=0:a=1,${filterOf(opts)}[out]`;
        const joined = await run(inputs, ['-filter_complex', graph, '-map', '[out]'], opts);
        return splitByWindows(joined, clipped, minSilenceS);
      };
      // A window that holds a stretch heard before is decoded as its pieces around it, each an input of its own.
      const { pieces, gather } = inPieces(windows, heardEdgeS(minSilenceS));
      const found = await inRuns(pieces, opts, WINDOWS_PER_RUN, scan);
      return gather(found);
    },

    async detectNearOrWide(file, targets, opts) {
      const minSilenceS = opts.minSilenceS ?? 0.3;
      const scan = async (batch: readonly NearAndWide[]): Promise<NearOrWide[]> => {
        const pairs = batch.map((t) => ({ near: clip(t.near, opts), wide: clip(t.wide, opts) }));
        const plan = nearThenWide(pairs, heardEdgeS(minSilenceS));
        const inputs = plan.inputs.flatMap((w) => windowInput(file, opts, w));
        const graph = nearThenWideGraph(pairs.length, plan.inputs.length - pairs.length, DOWNMIX, detectOf(opts));
        const split = (joined: readonly Silence[]): Silence[][] => splitByWindows(joined, plan.played, minSilenceS);
        const nearHeld = (joined: readonly Silence[]): boolean =>
          pastNear(joined, pairs) && plan.answer(split(joined)).every((t) => t.near.length > 0);
        const joined = await run(inputs, ['-filter_complex', graph, '-map', '[out]'], opts, nearHeld);
        return plan.answer(split(joined));
      };
      // Up to three inputs a target (its near window, and the wide one's pieces either side of it).
      return inRuns(targets, opts, Math.floor(WINDOWS_PER_RUN / 3), scan);
    },
  };
}
