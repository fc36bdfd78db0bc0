import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { chunkEncoding } from '../../src/chunker/chunk-format.ts';
import type { ChunkMode } from '../../src/chunker/chunk-recipe.ts';
import { createCutPlanner } from '../../src/chunker/cut-planner.ts';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import { createSlicer } from '../../src/chunker/slicer.ts';
import type { AudioFile } from '../lib/audio.ts';
import type { BenchContext, ScenarioOutput } from '../lib/context.ts';
import { run } from '../lib/proc.ts';
import { MetricSet } from '../lib/stats.ts';

const SEGMENT_S = 300;
/** The service's own settings (src/service/wiring.ts, src/config.ts defaults): mp3 chunks for openai, 6 h cap, look-ahead 2 x concurrency 3. */
const MAX_DURATION_S = 6 * 3600;
const LOOKAHEAD = 6;
/** CHUNK_SECONDS of the pipeline scenario; the service searches a quarter of it either side of each target. */
const PLAN_TARGET_S = 60;

interface Timed {
  firstChunkMs: number;
  totalMs: number;
  chunks: number;
}

async function timeSlicer(audio: AudioFile, outDir: string, cutPoints: number[], mode: ChunkMode): Promise<Timed> {
  const slicer = createSlicer({ logger: pino({ level: 'silent' }), timeoutS: 3600 });
  const started = performance.now();
  const handle = slicer.slice({
    input: audio.path,
    demuxer: 'mp3',
    outDir,
    cutPoints,
    format: 'mp3',
    mode,
    lookahead: LOOKAHEAD,
    maxDurationS: MAX_DURATION_S,
    expectedDurationS: audio.durationS,
  });
  let firstChunkMs = Number.NaN;
  let chunks = 0;
  // A consumer that keeps up: every chunk released at once, so back-pressure never pauses ffmpeg.
  for await (const chunk of handle.chunks) {
    if (chunks === 0) firstChunkMs = performance.now() - started;
    chunks += 1;
    handle.release(chunk.index);
  }
  await handle.done;
  return { firstChunkMs, totalMs: performance.now() - started, chunks };
}

/** Plain ffmpeg segmenting; the segment list on stdout tells when the first file is closed (it costs ffmpeg nothing). */
async function timeFfmpeg(
  audio: AudioFile,
  outDir: string,
  codecArgs: readonly string[],
  segmentArgs: string[],
): Promise<Timed> {
  let firstChunkMs = Number.NaN;
  let chunks = 0;
  const r = await run(
    'ffmpeg',
    [
      '-nostdin',
      '-hide_banner',
      '-nostats',
      '-v',
      'error',
      '-i',
      audio.path,
      '-map',
      '0:a:0',
      ...codecArgs,
      '-f',
      'segment',
      ...segmentArgs,
      '-reset_timestamps',
      '1',
      '-segment_list',
      'pipe:1',
      '-segment_list_type',
      'csv',
      path.join(outDir, 'seg-%05d.mp3'),
    ],
    {
      onStdoutLine: (line, ms) => {
        if (line.trim() === '') return;
        if (chunks === 0) firstChunkMs = ms;
        chunks += 1;
      },
    },
  );
  if (r.code !== 0) throw new Error(`ffmpeg segment failed: ${r.stderr.slice(-1000)}`);
  return { firstChunkMs, totalMs: r.ms, chunks };
}

export async function slicingScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('slicing');
  const cutPoints: number[] = [];
  for (let t = SEGMENT_S; t < audio.durationS; t += SEGMENT_S) cutPoints.push(t);
  const mp3 = chunkEncoding('mp3');
  const silences = createSilenceDetector({ logger: pino({ level: 'silent' }), timeoutS: 3600 });
  const cutPlanner = createCutPlanner({ silences, logger: pino({ level: 'silent' }) });
  const raw: Array<Record<string, Timed | number>> = [];

  for (let i = 0; i < ctx.runs; i++) {
    ctx.note(`slicing run ${i + 1}/${ctx.runs}`);
    const dir = path.join(ctx.workDir, `slicing-${i}`);
    const fresh = async (name: string): Promise<string> => {
      const d = path.join(dir, name);
      await rm(d, { recursive: true, force: true });
      await mkdir(d, { recursive: true });
      return d;
    };
    const ours = await timeSlicer(audio, await fresh('slicer'), cutPoints, 'encode');
    const oursCopy = await timeSlicer(audio, await fresh('slicer-copy'), cutPoints, 'copy');
    const copy = await timeFfmpeg(audio, await fresh('copy'), ['-c', 'copy'], ['-segment_time', String(SEGMENT_S)]);
    const same = await timeFfmpeg(audio, await fresh('same'), mp3.codecArgs, [
      '-segment_times',
      cutPoints.map((c) => c.toFixed(3)).join(','),
    ]);
    const scanStarted = performance.now();
    const found = await silences.detectSilences(audio.path, { demuxer: 'mp3', maxDurationS: MAX_DURATION_S });
    const scanMs = performance.now() - scanStarted;
    const windowsStarted = performance.now();
    const planned = await cutPlanner.planCuts({
      file: audio.path,
      demuxer: 'mp3',
      maxDurationS: MAX_DURATION_S,
      durationS: audio.durationS,
      targetS: PLAN_TARGET_S,
      searchWindowS: PLAN_TARGET_S / 4,
    });
    const windowsMs = performance.now() - windowsStarted;
    await rm(dir, { recursive: true, force: true });
    raw.push({
      ours,
      oursCopy,
      copy,
      same,
      scanMs,
      silences: found.length,
      windowsMs,
      windowCuts: planned.cuts.length,
      windowScan: planned.scan === 'windows' ? 1 : 0,
    });

    m.add('slicer copy path (mp3 as it is): first chunk', 's', oursCopy.firstChunkMs / 1000);
    m.add('slicer copy path: total', 's', oursCopy.totalMs / 1000);
    m.add('ffmpeg -c copy: first chunk', 's', copy.firstChunkMs / 1000);
    m.add('ffmpeg -c copy: total', 's', copy.totalMs / 1000);
    m.add(
      'ratio slicer copy path / ffmpeg copy: first chunk',
      'x',
      oursCopy.firstChunkMs / copy.firstChunkMs,
      '<= 1.2',
    );
    m.add('ratio slicer copy path / ffmpeg copy: total', 'x', oursCopy.totalMs / copy.totalMs, '<= 1.2');
    m.add('slicer re-encode path (mp3 16 kHz mono 32k): first chunk', 's', ours.firstChunkMs / 1000);
    m.add('slicer re-encode path: total', 's', ours.totalMs / 1000);
    m.add('slicer re-encode path: realtime factor', 'x', audio.durationS / (ours.totalMs / 1000));
    m.add('ffmpeg same encoding: first chunk', 's', same.firstChunkMs / 1000);
    m.add('ffmpeg same encoding: total', 's', same.totalMs / 1000);
    m.add('ratio slicer / ffmpeg same encoding: total', 'x', ours.totalMs / same.totalMs);
    m.add('silence scan, whole file (the planner before)', 's', scanMs / 1000);
    m.add(`silence search, windows around ${PLAN_TARGET_S} s targets (the planner now)`, 's', windowsMs / 1000);
    m.add('chunks: slicer', 'n', ours.chunks);
    m.add('chunks: slicer copy path', 'n', oursCopy.chunks);
    m.add('chunks: ffmpeg copy', 'n', copy.chunks);
  }
  return {
    metrics: m.list(),
    details: {
      segmentS: SEGMENT_S,
      audio: { path: audio.path, durationS: audio.durationS },
      codecArgs: mp3.codecArgs,
      runs: raw,
    },
  };
}
