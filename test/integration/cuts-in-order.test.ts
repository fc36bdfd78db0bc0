import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkPlanRecord, createChunkSource, type ChunkSubject } from '../../src/chunker/chunk-source.ts';
import { createCutPlanner } from '../../src/chunker/cut-planner.ts';
import type { ScanSlots } from '../../src/chunker/scan-slots.ts';
import { createScanSlots } from '../../src/chunker/scan-slots.ts';
import { createSilenceDetector, type SilenceDetector } from '../../src/chunker/silence-detect.ts';
import { ENGINES } from '../../src/transcribe/providers/index.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let mp3: string;

/** Where each 60 s target has its pause: 2 s after the first three, 10 s after the rest (past ±5 s, within ±15 s). */
const pauseAfter = (target: number) => (target <= 180 ? 2 : 10);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cut-plan-stop-'));
  mp3 = path.join(dir, 'tone.mp3');
  // 500 s of tone (a constant-bitrate mp3: windowed scans), silent for 0.8 s around each pause.
  const gaps = [60, 120, 180, 240, 300, 360, 420, 480]
    .map((t) => t + pauseAfter(t))
    .map((c) => `between(t,${c - 0.4},${c + 0.4})`)
    .join('+');
  execFileSync('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi'],
    ...['-i', `aevalsrc='0.5*sin(2*PI*440*t)*not(${gaps})':s=8000:d=500`],
    ...['-ar', '22050', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '32k', mp3],
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * ffmpeg behind a script that notes each run (its pid, which stays ffmpeg's: exec) and, while `hold` exists,
 * keeps a run whose arguments hold `-ss <heldFrom>` waiting before it starts decoding.
 */
async function heldFfmpeg(heldFrom: string) {
  const events = path.join(dir, 'runs.log');
  const hold = path.join(dir, 'hold');
  const wrapper = path.join(dir, 'ffmpeg-held');
  await writeFile(events, '');
  await writeFile(hold, '');
  await writeFile(
    wrapper,
    `#!/bin/sh\necho "$$ $*" >> '${events}'\n` +
      `while [ -e '${hold}' ] && echo "$*" | grep -q -- '-ss ${heldFrom} '; do sleep 0.01; done\nexec ffmpeg "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  return {
    wrapper,
    release: () => rm(hold),
    runs: async () =>
      (await readFile(events, 'utf8'))
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => ({ pid: Number(line.split(' ')[0]), args: line })),
  };
}

/** The detector's scans as asked, each with how it ended. */
function notedScans(detector: SilenceDetector) {
  const scans: Array<{ done: Promise<unknown>; outcome: 'answered' | 'failed' | null }> = [];
  const note = <T>(scan: Promise<T>): Promise<T> => {
    const entry: (typeof scans)[number] = { done: scan, outcome: null };
    scan.then(
      () => (entry.outcome = 'answered'),
      () => (entry.outcome = 'failed'),
    );
    scans.push(entry);
    return scan;
  };
  const noted: SilenceDetector = {
    detectSilences: (file, opts) => note(detector.detectSilences(file, opts)),
    detectInWindows: (file, windows, opts) => note(detector.detectInWindows(file, windows, opts)),
    detectNearOrWide: (file, targets, opts) => note(detector.detectNearOrWide(file, targets, opts)),
  };
  return { noted, scans };
}

describe('cutsInOrder stopped early', () => {
  /**
   * A plan of the tone's 8 targets (60 s chunks, ±15 s) at a pool of 3, its first three cuts taken, the third
   * batch's (targets 240-420 s) scan held before it decodes: its near windows, the first from 235 s.
   */
  async function pastTheFirstThree() {
    const ffmpeg = await heldFfmpeg('235.000');
    const detector = createSilenceDetector({ logger, timeoutS: 60, ffmpegPath: ffmpeg.wrapper });
    const { noted, scans } = notedScans(detector);
    const planner = createCutPlanner({ silences: noted, logger });
    const job = new AbortController();
    const plan = planner.cutsInOrder({
      ...{ file: mp3, demuxer: 'mp3', maxDurationS: 3600, durationS: 500, targetS: 60, searchWindowS: 15 },
      ...{ after: [], firstNeeded: 3, signal: job.signal },
    });
    const cuts = plan[Symbol.asyncIterator]();
    for (const target of [60, 120, 180]) {
      const { value } = await cuts.next();
      expect(Math.abs((value ?? 0) - (target + pauseAfter(target)))).toBeLessThan(0.1);
    }
    await until(
      async () => (await ffmpeg.runs()).some((r) => r.args.includes('-ss 235.000 ')),
      "the third batch's scan, ahead of need",
    );
    /** Until every scan asked has ended, and none it led to is still to be asked. */
    const settled = () =>
      until(async () => {
        await Promise.allSettled(scans.map((s) => s.done));
        // Any scan a settled one leads to is asked within a few turns of the event loop.
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        return scans.every((s) => s.outcome !== null);
      }, 'every scan the planner asked to end');
    const gone = async () => {
      for (const { pid } of await ffmpeg.runs())
        expect(existsSync(`/proc/${pid}`), `ffmpeg ${pid} still running`).toBe(false);
    };
    return { ffmpeg, scans, job, cuts, settled, gone };
  }

  it('stops the ffmpeg of a scan nothing will read and starts no other once its consumer stops', async () => {
    const { ffmpeg, scans, job, cuts, settled, gone } = await pastTheFirstThree();
    const before = (await ffmpeg.runs()).length;
    await cuts.return?.(undefined);
    // Let the held run go: had it not been stopped, it would find no pause within ±5 s of its targets and the
    // batch would widen to ±15 s, one more ffmpeg.
    await ffmpeg.release();
    await settled();
    expect(await ffmpeg.runs()).toHaveLength(before);
    expect(scans.at(-1)?.outcome).toBe('failed');
    await gone();
    expect(job.signal.aborted).toBe(false);
  });

  it("stops every scan with the job, the plan's own stop signal notwithstanding", async () => {
    const { ffmpeg, cuts, job, settled, gone } = await pastTheFirstThree();
    const next = cuts.next();
    job.abort(new Error('the job was cancelled'));
    await expect(next).rejects.toMatchObject({ code: 'CANCELLED' });
    await ffmpeg.release();
    await settled();
    await gone();
  });

  it("stops the scan under way once the slicer stops reading cuts, not only at the plan's next cut", async () => {
    // Slots that hold every scan ahead of need until told: the third batch's (240-420 s), asked while the first
    // chunk is cut, is the first of them. The scans something waits for run at once.
    const held: Array<{ release(): void; outcome: Promise<'answered' | 'failed'> }> = [];
    const urgent: Array<Promise<unknown>> = [];
    const scanSlots: ScanSlots = {
      run(task, ahead) {
        if (!ahead) {
          const run = task();
          urgent.push(run);
          return run;
        }
        let release!: () => void;
        const result = new Promise<void>((go) => (release = go)).then(task);
        held.push({
          release,
          outcome: result.then(
            () => 'answered' as const,
            () => 'failed' as const,
          ),
        });
        return result;
      },
    };
    const source = createChunkSource(
      { chunkSeconds: 60, chunkOverlapSeconds: 1, maxDurationS: 36_000, ffmpegTimeoutS: 60 },
      {
        logger,
        reader: { intake: ENGINES.openai.chunks, caps: () => ({ maxBytes: Infinity, maxSeconds: Infinity }) },
        scanSlots,
      },
    );
    const subject: ChunkSubject = {
      file: mp3,
      audio: { demuxer: 'mp3', codec: 'mp3', sample_rate: 22_050, channels: 1, size_bytes: 2_000_000, duration_s: 500 },
      model: 'whisper-1',
    };
    const signal = new AbortController().signal;
    const planned = await source.planChunks(subject, signal);
    expect(planned.lazy).toBeDefined();
    const handle = source.open(subject, chunkPlanRecord(planned.recipe, planned.hardCuts, true), {
      ...{ outDir: await mkdtemp(path.join(dir, 'chunks-')), cutPoints: [], lookahead: 8, inFlight: 3, signal },
    });
    const chunks = handle.chunks[Symbol.asyncIterator]();
    expect((await chunks.next()).value).toMatchObject({ index: 0 });
    await until(() => held.length === 1, "the third batch's scan, held");
    // The first three cuts are read: the plan now waits for the held scan, not for its reader.
    await Promise.allSettled(urgent);
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    await chunks.return?.(undefined);
    // Let it go: had the planning not stopped, it would decode its windows, find no pause within ±5 s of its
    // targets and widen to ±15 s, one more scan.
    held[0]?.release();
    expect(await held[0]?.outcome).toBe('failed');
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(held).toHaveLength(1);
  });
});

describe('cutsInOrder of several jobs at once', () => {
  it('plans each as it plans alone, on one shared decoder slot, at pools of 1, 3 and 8', async () => {
    const request = (firstNeeded: number) => ({
      ...{ file: mp3, demuxer: 'mp3', maxDurationS: 3600, durationS: 500, targetS: 60, searchWindowS: 15 },
      ...{ after: [], firstNeeded },
    });
    const plan = async (planner: ReturnType<typeof createCutPlanner>, firstNeeded: number) => {
      const cuts: number[] = [];
      for await (const cut of planner.cutsInOrder(request(firstNeeded))) cuts.push(cut);
      return cuts;
    };
    const alone = await plan(
      createCutPlanner({ silences: createSilenceDetector({ logger, timeoutS: 60 }), logger }),
      3,
    );
    expect(alone).toHaveLength(8);
    // Every job's scans, waited for or ahead of need, queue for the same single slot.
    const slots = createScanSlots(1);
    const shared = createCutPlanner({ silences: createSilenceDetector({ logger, timeoutS: 60, slots }), logger });
    expect(await Promise.all([1, 3, 8, 3].map((pool) => plan(shared, pool)))).toEqual([alone, alone, alone, alone]);
  });
});
