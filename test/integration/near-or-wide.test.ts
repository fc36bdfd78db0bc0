import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Silence } from '../../src/chunker/cut-points.ts';
import type { NearAndWide } from '../../src/chunker/near-or-wide.ts';
import { heardEdgeS } from '../../src/chunker/scan-pieces.ts';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import { ffmpeg, speechFixture } from '../fixtures/speech.ts';

/*
 * detectNearOrWide on real audio with real ffmpeg: each target's near window first, its whole window where that
 * held no pause, in one run that stops after the near part when it can.
 */

let dir: string;
/** The speech fixture three times over as a 128k CBR mp3 (seeks exactly), and its pauses from a whole-file scan. */
let mp3: string;
let pauses: Silence[];
const lines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
const detector = createSilenceDetector({ logger, timeoutS: 60, parallelRuns: 2 });
const opts = { demuxer: 'mp3', maxDurationS: 3600 };
/** The runs' end lines logged since `from`. */
const endedSince = (from: number) => lines.slice(from).filter((l) => l.msg === 'ffmpeg silencedetect ended');

beforeAll(async () => {
  const speech = speechFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'near-or-wide-'));
  mp3 = path.join(dir, 'long.mp3');
  ffmpeg([...['-stream_loop', '2', '-i', speech.wav], ...['-ar', '44100', '-ac', '2'], ...['-b:a', '128k', mp3]]);
  pauses = (await detector.detectSilences(mp3, opts)).filter((s) => s.start > 8 && s.end < 85);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Within 10 ms of each other, as runs of differently joined windows find them (see cut-planner.test.ts). */
function expectSame(a: readonly Silence[] | null, b: readonly Silence[] | null | undefined): void {
  expect(a?.length).toBe(b?.length);
  a?.forEach((s, i) => {
    expect(Math.abs(s.start - (b?.[i]?.start ?? NaN))).toBeLessThan(0.01);
    expect(Math.abs(s.end - (b?.[i]?.end ?? NaN))).toBeLessThan(0.01);
  });
}

describe('detectNearOrWide', () => {
  it("finds a target's near pauses, or its whole window's where the near one held none, as window scans do", async () => {
    expect(pauses.length).toBeGreaterThanOrEqual(4);
    // Target A sits in a pause; target B 3 s past the end of one, with nothing else within 1.5 s of it (the near
    // window), and the pause in its whole window (±6 s).
    const a = pauses[0] as Silence;
    const b = pauses.find((p) => !pauses.some((q) => q.end > p.end + 1.5 && q.start < p.end + 4.5)) as Silence;
    expect(b).toBeDefined();
    const targetA = (a.start + a.end) / 2;
    const targetB = b.end + 3;
    const pair = (t: number) => ({ near: { fromS: t - 1.5, toS: t + 1.5 }, wide: { fromS: t - 6, toS: t + 6 } });
    const targets = [pair(targetA), pair(targetB)];

    const from = lines.length;
    const found = await detector.detectNearOrWide(mp3, targets, opts);
    const near = await detector.detectInWindows(
      mp3,
      targets.map((t) => t.near),
      opts,
    );
    const wide = await detector.detectInWindows(
      mp3,
      targets.map((t) => t.wide),
      opts,
    );
    expect(found).toHaveLength(2);
    expect(found[0]?.wide).toBeNull();
    expectSame(found[0]?.near ?? null, near[0]);
    expect(found[1]?.near).toEqual([]);
    expect(near[1]).toEqual([]);
    expectSame(found[1]?.wide ?? null, wide[1]);
    expect(found[1]?.wide?.some((s) => Math.abs(s.end - b.end) < 0.05)).toBe(true);
    // One ffmpeg per target (two slots): the one whose near window held a pause stopped there.
    expect(
      endedSince(from)
        .slice(0, 2)
        .map((l) => l.settled)
        .sort(),
    ).toEqual([false, true]);
  });

  it('splits a scan something waits for only across the cores the scans asked beside it leave', async () => {
    const nearPause = (p: Silence) => {
      const t = (p.start + p.end) / 2;
      return { near: { fromS: t - 1, toS: t + 1 }, wide: { fromS: t - 6, toS: t + 6 } };
    };
    const [p0, p1, p2] = pauses.slice(0, 3).map(nearPause) as [NearAndWide, NearAndWide, NearAndWide];
    const startedSince = (from: number) => lines.slice(from).filter((l) => l.msg === 'ffmpeg silencedetect');
    // Alone, two targets take the two cores: a run each.
    let from = lines.length;
    await detector.detectNearOrWide(mp3, [p1, p2], opts);
    expect(startedSince(from)).toHaveLength(2);
    // Asked beside the first target's run (a job's first two batches): the two share the other core.
    from = lines.length;
    const [first, next] = await Promise.all([
      detector.detectNearOrWide(mp3, [p0], opts),
      detector.detectNearOrWide(mp3, [p1, p2], { ...opts, besideRuns: 1 }),
    ]);
    // Inputs a run: each target's near window, and its wide one's pieces either side of it (scan-pieces.ts).
    const runs = startedSince(from).map((l) => (l.args as string[]).filter((a) => a === '-i').length);
    expect(runs).toEqual([3, 6]);
    expect([...(first ?? []), ...(next ?? [])].map((t) => [t.near.length > 0, t.wide])).toEqual([
      [true, null],
      [true, null],
      [true, null],
    ]);
  });

  it('stops after the near windows only when every one of them held a pause', async () => {
    const nearPause = (p: Silence) => {
      const t = (p.start + p.end) / 2;
      return { near: { fromS: t - 1, toS: t + 1 }, wide: { fromS: t - 6, toS: t + 6 } };
    };
    // One run (ahead of need) for three targets, each in a pause.
    let from = lines.length;
    const found = await detector.detectNearOrWide(mp3, pauses.slice(0, 3).map(nearPause), { ...opts, ahead: true });
    expect(found.map((t) => [t.near.length > 0, t.wide])).toEqual([
      [true, null],
      [true, null],
      [true, null],
    ]);
    expect(endedSince(from).map((l) => l.settled)).toEqual([true]);
    // A fourth target whose near window (0.1 s) cannot hold a pause: the run decodes the whole windows too, and
    // answers the fourth from its whole window.
    const quiet = pauses.find((p) => p.end - p.start > 0.8) as Silence;
    const loud = {
      near: { fromS: quiet.end + 0.1, toS: quiet.end + 0.2 },
      wide: { fromS: quiet.start, toS: quiet.end + 1 },
    };
    from = lines.length;
    const more = await detector.detectNearOrWide(mp3, [...pauses.slice(0, 3).map(nearPause), loud], {
      ...opts,
      ahead: true,
    });
    expect(more[3]?.near).toEqual([]);
    expect(more[3]?.wide?.length).toBe(1);
    expect(more.slice(0, 3).map((t) => t.wide)).toEqual([null, null, null]);
    expect(endedSince(from).map((l) => l.settled)).toEqual([false]);
  });

  it('stops only once past the near windows: every pause of them is kept, not just the first found', async () => {
    const [p, q] = pauses as [Silence, Silence];
    const target = { near: { fromS: p.start - 1, toS: q.end + 1 }, wide: { fromS: p.start - 3, toS: q.end + 3 } };
    const from = lines.length;
    const [found] = await detector.detectNearOrWide(mp3, [target], opts);
    const [alone] = await detector.detectInWindows(mp3, [target.near], opts);
    expect(alone?.length).toBeGreaterThanOrEqual(2);
    expectSame(found?.near ?? null, alone);
    expect(endedSince(from)[0]?.settled).toBe(true);
  });

  it('reports a pause that runs past the end of a near window as that window alone would', async () => {
    // The near window ends inside a pause, 0.5 s after it began: its part of the pause is kept.
    const p = pauses.find((s) => s.end - s.start > 0.8) as Silence;
    const target = { near: { fromS: p.start - 2, toS: p.start + 0.5 }, wide: { fromS: p.start - 4, toS: p.end + 2 } };
    const [found] = await detector.detectNearOrWide(mp3, [target], opts);
    const [alone] = await detector.detectInWindows(mp3, [target.near], opts);
    expect(alone?.length).toBeGreaterThan(0);
    expectSame(found?.near ?? null, alone);
  });
});

describe('a window holding a stretch heard before (scan-pieces.ts)', () => {
  /** One frame of the 44.1 kHz mp3: how far apart two window scans seeking from other points may place a pause. */
  const MP3_FRAME_S = 1152 / 44100;
  /** Seconds of audio the runs started since `from` were asked to decode (the -t of each input). */
  const decodedSince = (from: number): number =>
    lines
      .slice(from)
      .filter((l) => l.msg === 'ffmpeg silencedetect')
      .flatMap((l) => (l.args as string[]).flatMap((a, i, all) => (a === '-t' ? [Number(all[i + 1])] : [])))
      .reduce((sum, t) => sum + t, 0);

  it('finds what a scan of the whole window finds, a pause crossing an edge of the heard stretch whole', async () => {
    // Heard stretches that end 0.2 s into a pause (left), or begin 0.2 s before one ends (right): too little of
    // it to be reported there, so each held no pause; and one with the pause 2 s outside it.
    const long = pauses.filter((p) => p.end - p.start > 0.6);
    expect(long.length).toBeGreaterThanOrEqual(2);
    const quietAround = (from: number, to: number) => !pauses.some((q) => q.end > from && q.start < to);
    const windows = long.flatMap((p) => {
      const out = [];
      // The pause ends 0.2 s inside the stretch after it.
      if (quietAround(p.end, p.end + 2.2))
        out.push({ fromS: p.end - 0.2 - 4, toS: p.end + 2, heard: { fromS: p.end - 0.2, toS: p.end + 2 } });
      // The pause starts 0.2 s before the stretch before it ends.
      if (quietAround(p.start - 2.2, p.start))
        out.push({ fromS: p.start - 2, toS: p.start + 0.2 + 4, heard: { fromS: p.start - 2, toS: p.start + 0.2 } });
      return out;
    });
    expect(windows.length).toBeGreaterThanOrEqual(2);
    const heardAlone = await detector.detectInWindows(
      mp3,
      windows.map((w) => w.heard),
      opts,
    );
    expect(heardAlone.every((s) => s.length === 0)).toBe(true);
    let from = lines.length;
    const pieces = await detector.detectInWindows(mp3, windows, opts);
    const inPieces = decodedSince(from);
    from = lines.length;
    const whole = await detector.detectInWindows(
      mp3,
      windows.map(({ fromS, toS }) => ({ fromS, toS })),
      opts,
    );
    const inWhole = decodedSince(from);
    // A piece seeks from another point than its whole window: the same pauses, within an mp3 frame (26 ms) of
    // each other, as any window scan against another (a pause cut short at the stretch's edge is 0.2 s off).
    windows.forEach((_, i) => {
      expect(whole[i]?.length).toBeGreaterThan(0);
      expect(pieces[i]?.length).toBe(whole[i]?.length);
      pieces[i]?.forEach((s, k) => {
        expect(Math.abs(s.start - (whole[i]?.[k]?.start ?? NaN))).toBeLessThan(MP3_FRAME_S + 0.005);
        expect(Math.abs(s.end - (whole[i]?.[k]?.end ?? NaN))).toBeLessThan(MP3_FRAME_S + 0.005);
      });
    });
    // The heard stretches (2.2 s each) were decoded again only at their edges.
    expect(inPieces).toBeLessThan(inWhole - windows.length);
  });

  it("decodes a target's whole window around its near one in a near-and-wide scan, with the same answer", async () => {
    // Target B as in the first test: no pause within 1.5 s, one 3 s before it.
    const b = pauses.find((p) => !pauses.some((q) => q.end > p.end + 1.5 && q.start < p.end + 4.5)) as Silence;
    const t = b.end + 3;
    const from = lines.length;
    const [found] = await detector.detectNearOrWide(
      mp3,
      [{ near: { fromS: t - 1.5, toS: t + 1.5 }, wide: { fromS: t - 6, toS: t + 6 } }],
      opts,
    );
    // The near window (3 s), then the wide one less all but the edges of the near one: 9 s and 1 s, not 12 s.
    expect(decodedSince(from)).toBeCloseTo(3 + 12 - 3 + 2 * heardEdgeS(0.3), 3);
    const [whole] = await detector.detectInWindows(mp3, [{ fromS: t - 6, toS: t + 6 }], opts);
    expect(found?.near).toEqual([]);
    expect(found?.wide?.length).toBe(whole?.length);
    found?.wide?.forEach((s, k) => {
      expect(Math.abs(s.start - (whole?.[k]?.start ?? NaN))).toBeLessThan(MP3_FRAME_S + 0.005);
      expect(Math.abs(s.end - (whole?.[k]?.end ?? NaN))).toBeLessThan(MP3_FRAME_S + 0.005);
    });
  });
});
