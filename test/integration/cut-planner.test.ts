import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCutPlanner } from '../../src/chunker/cut-planner.ts';
import { seeksExactly } from '../../src/chunker/seek-exact.ts';
import { LOW_PRIORITY } from '../../src/chunker/run-process.ts';
import { createScanSlots } from '../../src/chunker/scan-slots.ts';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import type { Silence } from '../../src/chunker/cut-points.ts';
import { planSplits } from '../../src/chunker/cut-points.ts';
import { speechFixture, type SpeechFixture } from '../fixtures/speech.ts';

const logger = pino({ level: 'silent' });
const detector = createSilenceDetector({ logger, timeoutS: 60 });
const planner = createCutPlanner({ silences: detector, logger });

let speech: SpeechFixture;
let dir: string;
/** The fixture three times over (~94 s), so there are several cuts. */
let longWav: string;
let longMp3: string;
let vbrMp3: string;

beforeAll(async () => {
  speech = speechFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'cut-planner-'));
  longWav = path.join(dir, 'long.wav');
  longMp3 = path.join(dir, 'long.mp3');
  vbrMp3 = path.join(dir, 'vbr.mp3');
  const run = (args: string[]) => execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
  run(['-stream_loop', '2', '-i', speech.wav, '-c:a', 'pcm_s16le', longWav]);
  run(['-i', longWav, '-ar', '44100', '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k', longMp3]);
  run(['-i', speech.wav, '-c:a', 'libmp3lame', '-q:a', '4', vbrMp3]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function inSilence(cut: number, silences: readonly Silence[]): boolean {
  return silences.some((s) => cut >= s.start - 0.05 && cut <= s.end + 0.05);
}

describe('createCutPlanner', () => {
  it.each([
    ['wav', 'wav'],
    ['mp3', 'mp3'],
  ] as const)(
    'plans the %s cuts from windows around the targets, each in a silence of the whole file',
    async (kind, demuxer) => {
      const file = kind === 'wav' ? longWav : longMp3;
      const durationS = Number(
        execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString(),
      );
      const whole = await detector.detectSilences(file, { demuxer, maxDurationS: 3600 });
      const plan = { durationS, targetS: 15, searchWindowS: 6 };
      const { cuts, hardCuts, scan } = await planner.planCuts({ file, demuxer, maxDurationS: 3600, ...plan });

      expect(scan).toBe('windows');
      expect(cuts.length).toBeGreaterThanOrEqual(4);
      expect(hardCuts).toBe(0);
      for (const cut of cuts) expect(inSilence(cut, whole), `cut ${cut} in a silence`).toBe(true);
      // One cut per target of the silence-free plan, each within the search window of it.
      const targets = planSplits(plan);
      expect(cuts).toHaveLength(targets.length);
      cuts.forEach((c, i) => expect(Math.abs(c - (targets[i] ?? 0))).toBeLessThanOrEqual(plan.searchWindowS));
    },
  );

  it('scans a VBR mp3 whole, since seeking in it only estimates the position', async () => {
    expect(await seeksExactly(vbrMp3, 'mp3')).toBe(false);
    expect(await seeksExactly(longMp3, 'mp3')).toBe(true);
    const { cuts, scan } = await planner.planCuts({
      file: vbrMp3,
      demuxer: 'mp3',
      maxDurationS: 3600,
      durationS: speech.durationS,
      targetS: 10,
      searchWindowS: 3,
    });
    expect(scan).toBe('whole');
    const whole = await detector.detectSilences(vbrMp3, { demuxer: 'mp3', maxDurationS: 3600 });
    for (const cut of cuts) expect(inSilence(cut, whole)).toBe(true);
  });

  it('counts every cut of a recording without pauses as hard, by either scan', async () => {
    const hum = path.join(dir, 'hum.wav');
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'anoisesrc=d=60:c=pink:a=0.3',
      '-ar',
      '16000',
      hum,
    ]);
    const windows = await planner.planCuts({
      file: hum,
      demuxer: 'wav',
      maxDurationS: 3600,
      durationS: 60,
      targetS: 15,
      searchWindowS: 3,
    });
    expect(windows).toEqual({ cuts: [15, 30, 45], hardCuts: 3, scan: 'windows' });
    const humMp3 = path.join(dir, 'hum.mp3');
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-i',
      hum,
      '-c:a',
      'libmp3lame',
      '-q:a',
      '4',
      humMp3,
    ]);
    const whole = await planner.planCuts({
      file: humMp3,
      demuxer: 'mp3',
      maxDurationS: 3600,
      durationS: 60,
      targetS: 15,
      searchWindowS: 3,
    });
    expect(whole).toMatchObject({ hardCuts: 3, scan: 'whole' });
  });

  it('reports the silences of each window in the file times, as the whole scan finds them', async () => {
    const whole = await detector.detectSilences(speech.wav, { demuxer: 'wav', maxDurationS: 3600 });
    const gaps = whole.filter((s) => s.start > 5 && s.end < speech.durationS - 3).slice(0, 3);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    // Each window holds one pause with 2 s of sound either side; the last window covers nothing of note.
    const windows = [...gaps.map((g) => ({ fromS: g.start - 2, toS: g.end + 2 })), { fromS: 0.5, toS: 0.6 }];
    const found = await detector.detectInWindows(speech.wav, windows, { demuxer: 'wav', maxDurationS: 3600 });
    expect(found).toHaveLength(windows.length);
    gaps.forEach((g, i) => {
      const same = found[i]?.find((s) => Math.abs(s.start - g.start) < 0.05);
      expect(same?.end).toBeCloseTo(g.end, 1);
    });
    // Runs side by side (one window each here) find the same, in the same order (to within 10 ms: the
    // windows' offsets in the joined timeline differ by a fraction of a sample).
    const parallel = createSilenceDetector({ logger, timeoutS: 60, parallelRuns: 3 });
    const side = await parallel.detectInWindows(speech.wav, windows, { demuxer: 'wav', maxDurationS: 3600 });
    expect(side.map((w) => w.length)).toEqual(found.map((w) => w.length));
    side.flat().forEach((g, i) => {
      expect(Math.abs(g.start - (found.flat()[i]?.start ?? NaN))).toBeLessThan(0.01);
      expect(Math.abs(g.end - (found.flat()[i]?.end ?? NaN))).toBeLessThan(0.01);
    });
  });

  it('runs at most parallelRuns ffmpeg at once across scans, the ones waited for first, one run for a scan ahead', async () => {
    const { wrapper, runs, mostAtOnce } = await notedFfmpeg('slots');
    const noted = createSilenceDetector({ logger, timeoutS: 60, parallelRuns: 2, ffmpegPath: wrapper });
    const opts = { demuxer: 'wav', maxDurationS: 3600 };
    const windows = (from: number) =>
      Array.from({ length: 4 }, (_, i) => ({ fromS: from + 3 * i, toS: from + 3 * i + 2 }));
    // A scan ahead of need, asked for while both slots are taken, runs after a later scan something waits for.
    const [first, ahead, second] = await Promise.all([
      noted.detectInWindows(speech.wav, windows(1), opts),
      noted.detectInWindows(speech.wav, windows(1), { ...opts, ahead: true }),
      noted.detectInWindows(speech.wav, windows(1.5), opts),
    ]);
    // The same silences in one run as in two (to within 10 ms, as above).
    expect(ahead.map((w) => w.length)).toEqual(first.map((w) => w.length));
    ahead.flat().forEach((g, i) => expect(Math.abs(g.end - (first.flat()[i]?.end ?? NaN))).toBeLessThan(0.01));
    expect(first.flat().length).toBeGreaterThan(0);
    expect(second).toHaveLength(4);
    const lines = await runs();
    expect(mostAtOnce(lines)).toBeLessThanOrEqual(2);
    const starts = lines.filter((l) => l.startsWith('start')).map((l) => l.replaceAll('-ss ', '').trim());
    // The two runs of each scan start side by side (in either order).
    expect([starts.slice(0, 2).sort(), starts.slice(2, 4).sort(), starts.slice(4)]).toEqual([
      ['start 1.000 4.000', 'start 7.000 10.000'],
      ['start 1.500 4.500', 'start 7.500 10.500'],
      ['start 1.000 4.000 7.000 10.000'],
    ]);
  });

  it('runs a scan ahead of need at low priority (nice 10), one something waits for at the usual one', async () => {
    const events = path.join(dir, 'nice.log');
    const go = path.join(dir, 'nice.go');
    const wrapper = path.join(dir, 'ffmpeg-nice');
    // The wrapper notes its nice value once told to (the detector has spawned it by then), then runs ffmpeg.
    await writeFile(
      wrapper,
      `#!/bin/sh\nwhile [ ! -e '${go}' ]; do sleep 0.01; done\ncut -d' ' -f19 /proc/$$/stat >> '${events}'\nexec ffmpeg "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    await writeFile(events, '');
    const noted = createSilenceDetector({ logger, timeoutS: 60, ffmpegPath: wrapper });
    const windows = [{ fromS: 1, toS: 3 }];
    for (const ahead of [true, false]) {
      await rm(go, { force: true });
      const scan = noted.detectInWindows(speech.wav, windows, { demuxer: 'wav', maxDurationS: 3600, ahead });
      await writeFile(go, '');
      expect(await scan).toHaveLength(1);
    }
    // Relative to the service's own priority (the test runner's here, which may itself be niced).
    const own = os.getPriority();
    expect((await readFile(events, 'utf8')).trim().split('\n')).toEqual([
      String(Math.min(19, own + LOW_PRIORITY)),
      String(own),
    ]);
  });

  it('shares one set of slots between detectors (backends) given the same', async () => {
    const { wrapper, runs, mostAtOnce } = await notedFfmpeg('shared');
    const slots = createScanSlots(1);
    const [a, b] = [1, 2].map(() =>
      createSilenceDetector({ logger, timeoutS: 60, parallelRuns: 1, ffmpegPath: wrapper, slots }),
    );
    const opts = { demuxer: 'wav', maxDurationS: 3600 };
    const found = await Promise.all(
      [a, b, a, b].map((d, i) => d?.detectInWindows(speech.wav, [{ fromS: i, toS: i + 2 }], opts)),
    );
    expect(found).toHaveLength(4);
    const lines = await runs();
    expect(lines).toHaveLength(8);
    expect(mostAtOnce(lines)).toBe(1);
  });
});

/** ffmpeg behind a script that notes when each run starts and ends (one line each, appended), with their -ss. */
async function notedFfmpeg(name: string) {
  const events = path.join(dir, `${name}-runs.log`);
  const wrapper = path.join(dir, `ffmpeg-${name}`);
  await writeFile(events, '');
  await writeFile(
    wrapper,
    `#!/bin/sh\nlabel="$(echo "$@" | grep -o -- '-ss [0-9.]*' | tr '\\n' ' ')"\necho "start $label" >> '${events}'\nffmpeg "$@"\nrc=$?\necho "end $label" >> '${events}'\nexit $rc\n`,
  );
  await chmod(wrapper, 0o755);
  return {
    wrapper,
    runs: async () => (await readFile(events, 'utf8')).trim().split('\n'),
    /** The most runs under way at once, from the lines in order. */
    mostAtOnce(lines: readonly string[]): number {
      let running = 0;
      let most = 0;
      for (const line of lines) {
        running += line.startsWith('start') ? 1 : -1;
        most = Math.max(most, running);
      }
      return most;
    },
  };
}
