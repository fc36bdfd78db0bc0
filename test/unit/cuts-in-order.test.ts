import { describe, expect, it } from 'vitest';
import { planSplits, planSplitsByWindows, type ScanWindow, type Silence } from '../../src/chunker/cut-points.ts';
import {
  URGENT_WINDOW_S,
  MAX_BATCH,
  WIDEN_UNTIL_BARE,
  nearThenWideScan,
  planCutsInOrder,
  type NearOrWideScan,
  type ScanAsk,
  type WindowScan,
} from '../../src/chunker/cuts-in-order.ts';
import type { NearAndWide, NearOrWide } from '../../src/chunker/near-or-wide.ts';

/** One turn of the event loop: every promise settled by now has run its reactions. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Turns of the event loop until `ok` holds (at most 100: a planner that never gets there fails the test). */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await tick();
  expect(ok()).toBe(true);
}

const inside = (silences: readonly Silence[], w: ScanWindow) =>
  silences.filter((s) => s.end > w.fromS && s.start < w.toS);

/** A scan over fixed silences, recording the windows it was asked for. */
function scanner(silences: readonly Silence[]) {
  const calls: ScanWindow[][] = [];
  const scan = async (windows: readonly ScanWindow[]) => {
    calls.push([...windows]);
    return windows.map((w) => inside(silences, w));
  };
  return { scan, calls };
}

/** A near-or-wide scan over fixed silences, recording the targets it was asked for. */
function pairScanner(silences: readonly Silence[]) {
  const calls: Array<{ targets: NearAndWide[]; ahead: boolean; besideRuns?: number }> = [];
  const nearOrWide: NearOrWideScan = async (targets, { ahead = false, besideRuns } = {}) => {
    calls.push({ targets: [...targets], ahead, ...(besideRuns === undefined ? {} : { besideRuns }) });
    return targets.map(({ near, wide }) => {
      const found = inside(silences, near);
      return { near: found, wide: found.length > 0 ? null : inside(silences, wide) };
    });
  };
  return { nearOrWide, calls };
}

/** A held scan's controls: what it was asked with, and how it ends (answered, or failed). */
interface Held {
  ahead: boolean;
  signal: AbortSignal | undefined;
  fail(err: Error): void;
}

/** Scans that answer only when told, recording each call, whether it was ahead of need and its stop signal. */
function heldScans() {
  const windows: Array<Held & { windows: ScanWindow[]; answer(found?: Silence[]): void }> = [];
  const pairs: Array<Held & { targets: NearAndWide[]; answer(found?: NearOrWide[]): void }> = [];
  const scan = (asked: readonly ScanWindow[], { ahead = false, signal }: ScanAsk = {}) =>
    new Promise<Silence[][]>((resolve, fail) => {
      const answer = (found: Silence[] = []) => resolve(asked.map((w) => inside(found, w)));
      windows.push({ windows: [...asked], ahead, signal, answer, fail });
    });
  const nearOrWide: NearOrWideScan = (targets, { ahead = false, signal } = {}) =>
    new Promise((resolve, fail) => {
      const none = targets.map(() => ({ near: [], wide: [] }));
      pairs.push({ targets: [...targets], ahead, signal, answer: (found = none) => resolve(found), fail });
    });
  return { scan, nearOrWide, windows, pairs };
}

const collect = async (it: AsyncIterable<{ cut: number; hard: boolean }>) => {
  const out: Array<{ cut: number; hard: boolean }> = [];
  for await (const c of it) out.push(c);
  return out;
};

// A pause every 23 s (1.5 s long) and a stretch without any from 300 s to 460 s.
const silences = Array.from({ length: 40 }, (_, i) => ({ start: 23 * i + 10, end: 23 * i + 11.5 })).filter(
  (s) => s.start < 300 || s.start > 460,
);
const opts = { durationS: 920, targetS: 60, searchWindowS: 15, nearS: 5 };
const pair = (t: number) => ({ near: { fromS: t - 5, toS: t + 5 }, wide: { fromS: t - 15, toS: t + 15 } });

/** A plan at a pool of 3, its first two batches asked, the first answered: a pause at 59-60 s. */
async function firstAnswered() {
  const held = heldScans();
  const it = planCutsInOrder(opts, held.scan, held.nearOrWide)[Symbol.asyncIterator]();
  const first = it.next();
  await tick();
  held.pairs[0]?.answer([{ near: [{ start: 59, end: 60 }], wide: null }]);
  return { held, it, first };
}

describe('planCutsInOrder', () => {
  it('makes the cuts of planSplitsByWindows, with the same hard ones', async () => {
    const eager = await planSplitsByWindows(opts, scanner(silences).scan);
    expect(eager.hardCuts).toBeGreaterThan(0);
    for (const nearOrWide of [pairScanner(silences).nearOrWide, undefined]) {
      const lazy = await collect(planCutsInOrder(opts, scanner(silences).scan, nearOrWide));
      expect(lazy.map((c) => c.cut)).toEqual(eager.cuts);
      expect(lazy.filter((c) => c.hard)).toHaveLength(eager.hardCuts);
    }
    const tight = { ...opts, maxChunkS: 70, minTailS: 10 };
    expect((await collect(planCutsInOrder(tight, scanner(silences).scan))).map((c) => c.cut)).toEqual(
      (await planSplitsByWindows(tight, scanner(silences).scan)).cuts,
    );
  });

  it('asks for the first target alone and the next two beside it, near and wide in one scan, then batches of 4, 8 ...', async () => {
    const windows = scanner(silences);
    const pairs = pairScanner(silences);
    const it = planCutsInOrder(opts, windows.scan, pairs.nearOrWide)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ cut: 56.75, hard: false });
    // The first cut came from the first target's scan; the next batch (the chunks a pool of 3 sends next) was
    // asked for beside it, each target's near and whole window in one scan.
    expect(pairs.calls).toEqual([
      { targets: [pair(60)], ahead: false },
      // Beside the first target's run: split across the cores it leaves.
      { targets: [pair(120), pair(180)], ahead: false, besideRuns: 1 },
    ]);
    await collect({ [Symbol.asyncIterator]: () => it });
    // 15 targets: the rest near first, in batches of 4 and 8, and wide where a near window held no pause.
    const near = windows.calls.filter((c) => c.every((w) => w.toS - w.fromS <= 10));
    expect(near.map((c) => c.length)).toEqual([4, 8]);
    expect(windows.calls.length).toBeGreaterThan(near.length);
    expect(MAX_BATCH).toBe(32);
  });

  it('looks for a pause within URGENT_WINDOW_S of the targets the first chunks wait for, in the whole window after', async () => {
    // 300 s chunks, a ±60 s search window; a pause 30 s before each target, but 10 s before the one at 600 s.
    const wide = { durationS: 3000, targetS: 300, searchWindowS: 60, nearS: 5 };
    const targets = Array.from({ length: 9 }, (_, i) => 300 * (i + 1));
    const pauseAt = (t: number) => (t === 600 ? t - 10 : t - 30);
    const pauses = targets.map((t) => ({ start: pauseAt(t) - 1, end: pauseAt(t) + 1 }));
    const around = (t: number, r: number) => ({ fromS: t - r, toS: t + r });
    for (const [firstNeeded, urgent] of [
      [3, [300, 600, 900]],
      [1, [300]],
      // The first WIDEN_UNTIL_BARE targets only: the pool's later ones look in their whole window where ±15 s
      // held no pause.
      [8, [300, 600, 900]],
    ] as const) {
      const pairs = pairScanner(pauses);
      const windows = scanner(pauses);
      const cuts = await collect(planCutsInOrder({ ...wide, firstNeeded }, windows.scan, pairs.nearOrWide));
      const askedWide = [...pairs.calls.flatMap((c) => c.targets.map((t) => t.wide)), ...windows.calls.flat()];
      for (const t of urgent) {
        expect(askedWide).toContainEqual(around(t, URGENT_WINDOW_S));
        expect(askedWide).not.toContainEqual(around(t, 60));
      }
      // A pause 30 s away is out of reach where the first chunks wait (a hard cut there, which the overlap
      // repairs), and found everywhere else.
      const hard = targets.filter((t) => (urgent as readonly number[]).includes(t) && t !== 600);
      expect(cuts).toEqual(
        targets.map((t) => (hard.includes(t) ? { cut: t, hard: true } : { cut: pauseAt(t), hard: false })),
      );
    }
    // At a pool of 8, the whole windows of targets 4-8 are asked for as scans something waits for, after their
    // ±15 s ones (in the urgent near-and-wide scans), each batch's together.
    const asked: Array<{ windows: ScanWindow[]; ahead: boolean }> = [];
    const recording: WindowScan = async (ws, { ahead = false } = {}) => {
      asked.push({ windows: [...ws], ahead });
      return ws.map((w) => inside(pauses, w));
    };
    const pairs = pairScanner(pauses);
    await collect(planCutsInOrder({ ...wide, firstNeeded: 8 }, recording, pairs.nearOrWide));
    expect(pairs.calls.flatMap((c) => c.targets.map((t) => t.wide))).toEqual(
      targets.slice(0, 8).map((t) => around(t, URGENT_WINDOW_S)),
    );
    // Each with the ±15 s window it holds, which held no pause (decoded again only at its edges).
    const ring = (t: number) => ({ ...around(t, 60), heard: around(t, URGENT_WINDOW_S) });
    expect(asked.filter((c) => !c.ahead)).toEqual([
      { windows: [1200, 1500, 1800, 2100].map(ring), ahead: false },
      { windows: [ring(2400)], ahead: false },
    ]);
    expect(URGENT_WINDOW_S).toBe(15);
  });

  it("takes a pause from an urgent target's wide scan even after the targets before it stopped the widening", async () => {
    // A pool of 8: no pause within ±60 s of the first three targets (continuous sound, it seems), then one 10 s
    // from the fifth, found by the near-and-wide scan asked for at the start, before the streak was known.
    const wide = { durationS: 3000, targetS: 300, searchWindowS: 60, nearS: 5, firstNeeded: 8 };
    const pauses = [{ start: 1509, end: 1511 }];
    const cuts = await collect(planCutsInOrder(wide, scanner(pauses).scan, pairScanner(pauses).nearOrWide));
    expect(cuts[4]).toEqual({ cut: 1510, hard: false });
    expect(cuts.filter((c) => c.hard)).toHaveLength(8);
  });

  it('widens a later batch outward: ±URGENT_WINDOW_S, then the whole window only where that held no pause', async () => {
    // 300 s chunks, a ±60 s search window; pauses 2 s from the first three targets, 10 s from 1200 and 1500 s,
    // 40 s from 1800 s, none near 2100 s.
    const wide = { durationS: 2400, targetS: 300, searchWindowS: 60, nearS: 5 };
    const offset = new Map([
      [1200, 10],
      [1500, -10],
      [1800, 40],
    ]);
    const pauseAt = (t: number) => t + (offset.get(t) ?? (t < 1200 ? 2 : 1000));
    const pauses = [300, 600, 900, 1200, 1500, 1800, 2100].map((t) => ({ start: pauseAt(t), end: pauseAt(t) + 1 }));
    const windows = scanner(pauses);
    const cuts = await collect(planCutsInOrder(wide, windows.scan, pairScanner(pauses).nearOrWide));
    const around = (t: number, r: number) => ({ fromS: t - r, toS: t + r });
    // Each ring with the one inside it, which held no pause (decoded again only at its edges).
    expect(windows.calls).toEqual([
      [1200, 1500, 1800, 2100].map((t) => around(t, 5)),
      [1200, 1500, 1800, 2100].map((t) => ({ ...around(t, URGENT_WINDOW_S), heard: around(t, 5) })),
      [1800, 2100].map((t) => ({ ...around(t, 60), heard: around(t, URGENT_WINDOW_S) })),
    ]);
    expect(cuts.slice(3)).toEqual([
      { cut: 1210.5, hard: false },
      { cut: 1490.5, hard: false },
      { cut: 1840.5, hard: false },
      { cut: 2100, hard: true },
    ]);
  });

  it('asks for the first targets of a bigger pool at once, each batch beside the runs before it', async () => {
    const long = { ...opts, durationS: 60 * 41 };
    for (const [firstNeeded, sizes] of [
      [8, [1, 2, 4, 1]],
      [2, [1, 1]],
      [16, [1, 2, 4, 8, 1]],
    ] as const) {
      const held = heldScans();
      const it = planCutsInOrder({ ...long, firstNeeded }, held.scan, held.nearOrWide)[Symbol.asyncIterator]();
      const first = it.next();
      await tick();
      // Every target the pool's first chunks wait for is asked for before any answer, none of it ahead of need
      // (a batch ends at the last of them), and nothing else.
      expect(held.pairs.map((c) => c.targets.length)).toEqual(sizes);
      expect(held.pairs.flatMap((c) => c.targets)).toEqual(
        Array.from({ length: firstNeeded }, (_, k) => pair(60 * (k + 1))),
      );
      expect(held.pairs.every((c) => !c.ahead)).toBe(true);
      expect(held.windows).toHaveLength(0);
      held.pairs[0]?.answer();
      expect((await first).value).toEqual({ cut: 60, hard: true });
      await it.return(undefined);
    }
    // Each asked beside the runs of those before it.
    const pairs = pairScanner([]);
    await collect(planCutsInOrder({ ...long, firstNeeded: 8 }, scanner([]).scan, pairs.nearOrWide));
    expect(pairs.calls.slice(0, 4).map((c) => c.besideRuns)).toEqual([undefined, 1, 2, 3]);
  });

  it('scans the next two targets ahead of need when the pool sends one chunk at a time', async () => {
    const pairs = pairScanner(silences);
    const one = planCutsInOrder({ ...opts, firstNeeded: 1 }, scanner(silences).scan, pairs.nearOrWide);
    const cuts = await collect(one);
    expect(pairs.calls.slice(0, 2)).toEqual([
      { targets: [pair(60)], ahead: false },
      { targets: [pair(120), pair(180)], ahead: true },
    ]);
    // Only the scans' priority changes: the same cuts as a pool of 3 gets.
    expect(cuts).toEqual(
      await collect(planCutsInOrder(opts, scanner(silences).scan, pairScanner(silences).nearOrWide)),
    );
  });

  it('stops widening the search in continuous sound: the same (hard) cuts from a fraction of the scans', async () => {
    const long = { durationS: 60 * 41, targetS: 60, searchWindowS: 15, nearS: 5 };
    const eager = scanner([]);
    expect(await planSplitsByWindows(long, eager.scan)).toMatchObject({ hardCuts: 40 });
    const lazy = scanner([]);
    const pairs = pairScanner([]);
    const cuts = await collect(planCutsInOrder(long, lazy.scan, pairs.nearOrWide));
    expect(cuts.map((c) => c.cut)).toEqual((await planSplitsByWindows(long, scanner([]).scan)).cuts);
    const wideWindows = (calls: typeof lazy.calls) => calls.flat().filter((w) => w.toS - w.fromS > 10).length;
    expect(wideWindows(eager.calls)).toBe(40);
    // Only the first WIDEN_UNTIL_BARE bare targets widen (in the first two batches' near-and-wide scans), though
    // later batches are scanned before those are used.
    expect(pairs.calls.flatMap((c) => c.targets)).toHaveLength(WIDEN_UNTIL_BARE);
    expect(wideWindows(lazy.calls)).toBe(0);
    expect(WIDEN_UNTIL_BARE).toBe(3);
  });

  it('in continuous sound, the first cut waits for one scan: its near and whole window at once', async () => {
    const held = heldScans();
    const first = planCutsInOrder(opts, held.scan, held.nearOrWide)[Symbol.asyncIterator]().next();
    await tick();
    // The first target's scan and the next batch's are out before either answered, and nothing else.
    expect(held.pairs.map((c) => c.targets)).toEqual([[pair(60)], [pair(120), pair(180)]]);
    expect(held.windows).toHaveLength(0);
    held.pairs[0]?.answer();
    expect(await first).toEqual({ done: false, value: { cut: 60, hard: true } });
  });

  it("takes a target's whole window only where its near one held no pause", async () => {
    const held = heldScans();
    const it = planCutsInOrder(opts, held.scan, held.nearOrWide)[Symbol.asyncIterator]();
    const first = it.next();
    await tick();
    // A pause in the near window wins over a nearer one the whole window would hold (were it scanned).
    held.pairs[0]?.answer([{ near: [{ start: 62, end: 63 }], wide: null }]);
    expect((await first).value).toEqual({ cut: 62.5, hard: false });
    const next = it.next();
    held.pairs[1]?.answer([
      { near: [], wide: [{ start: 130, end: 131 }] },
      { near: [{ start: 176, end: 177 }], wide: null },
    ]);
    expect((await next).value).toEqual({ cut: 130.5, hard: false });
    expect((await it.next()).value).toEqual({ cut: 176.5, hard: false });
    await it.return(undefined);
  });

  it('scans a later batch near and wide at once when the batch before held no pause near any target', async () => {
    const { held, it, first } = await firstAnswered();
    // The second batch (120 and 180 s) held no pause near either target nor in either whole window.
    held.pairs[1]?.answer();
    expect((await first).value).toEqual({ cut: 59.5, hard: false });
    await tick();
    const second = it.next();
    // Two bare targets in a row (fewer than WIDEN_UNTIL_BARE): the next batch is likely bare too.
    await until(() => held.pairs.length === 3);
    expect(held.pairs[2]).toMatchObject({ targets: [240, 300, 360, 420].map(pair), ahead: true });
    expect(held.windows).toHaveLength(0);
    expect((await second).value).toEqual({ cut: 120, hard: true });
    await it.return(undefined);
  });

  it('scans a later batch near first when the batch before missed near its targets but found a pause wider', async () => {
    const { held, it, first } = await firstAnswered();
    // Nothing near 120 or 180 s, a pause 10 s from each: longer sentences, not continuous sound.
    held.pairs[1]?.answer([
      { near: [], wide: [{ start: 130, end: 131 }] },
      { near: [], wide: [{ start: 170, end: 171 }] },
    ]);
    expect((await first).value).toEqual({ cut: 59.5, hard: false });
    await tick();
    const second = it.next();
    await until(() => held.windows.length + held.pairs.length === 3);
    // Near windows only: a whole window is decoded only where its near one comes back without a pause.
    expect(held.windows[0]).toMatchObject({ windows: [240, 300, 360, 420].map((t) => pair(t).near), ahead: true });
    expect(held.pairs).toHaveLength(2);
    expect((await second).value).toEqual({ cut: 130.5, hard: false });
    await it.return(undefined);
  });

  it("asks a later batch's scans only after every scan of the batch before it, its whole windows included", async () => {
    const { held, it } = await pastTheFirstThree();
    // The slicer now waits for the third batch, whose near windows are asked; the fourth waits.
    const fourth = it.next();
    for (let i = 0; i < 10; i++) await tick();
    expect(held.windows).toHaveLength(1);
    // No pause near 240 s: its whole window is asked before the fourth batch's near ones.
    held.windows[0]?.answer([300, 360, 420].map((t) => ({ start: t, end: t + 1 })));
    await until(() => held.windows.length === 3);
    expect(held.windows[1]?.windows).toEqual([{ ...pair(240).wide, heard: pair(240).near }]);
    expect(held.windows[2]?.windows).toEqual([480, 540, 600, 660, 720, 780, 840, 900].map((t) => pair(t).near));
    held.windows[1]?.answer([{ start: 250, end: 251 }]);
    expect((await fourth).value).toEqual({ cut: 250.5, hard: false });
    await it.return(undefined);
  });

  it('marks every scan after the first two batches ahead of need', async () => {
    const held = heldScans();
    const cuts = collect(planCutsInOrder(opts, held.scan, held.nearOrWide));
    // Answer every scan as it comes until the plan ends (15 targets: batches of 1, 2, 4, 8); the first three
    // targets hold a pause nearby, so later batches are scanned near first.
    const near = [60, 120, 180].map((t) => [{ near: [{ start: t, end: t + 1 }], wide: null }]);
    let done = false;
    void cuts.then(() => (done = true));
    for (let answered = 0, pairsAnswered = 0, turns = 0; !done && turns < 1000; turns++) {
      if (held.pairs.length > pairsAnswered) {
        const call = held.pairs[pairsAnswered];
        call?.answer(call.targets.map((_, k) => near[pairsAnswered + k]?.[0] ?? { near: [], wide: [] }));
        pairsAnswered += 1;
      } else if (held.windows.length > answered) held.windows[answered++]?.answer();
      else await tick();
    }
    expect(await cuts).toHaveLength(15);
    expect(held.pairs.map((c) => ({ targets: c.targets.length, ahead: c.ahead }))).toEqual([
      { targets: 1, ahead: false },
      { targets: 2, ahead: false },
    ]);
    // Batch 3's near windows, their wide ones (none held a pause), batch 4's near ones (no longer widened),
    // the last two asked for in either order.
    expect(held.windows.map((c) => `${c.windows.length} ${c.ahead ? 'ahead' : 'needed'}`).sort()).toEqual([
      '4 ahead',
      '4 ahead',
      '8 ahead',
    ]);
  });

  /** A plan at a pool of 3 whose first three targets held a pause near them, its three first cuts taken. */
  async function pastTheFirstThree() {
    const { held, it, first } = await firstAnswered();
    held.pairs[1]?.answer([
      { near: [{ start: 119, end: 120 }], wide: null },
      { near: [{ start: 179, end: 180 }], wide: null },
    ]);
    expect((await first).value).toEqual({ cut: 59.5, hard: false });
    expect((await it.next()).value).toEqual({ cut: 119.5, hard: false });
    expect((await it.next()).value).toEqual({ cut: 179.5, hard: false });
    // The third batch (240-420 s) was asked for, ahead of need, while the second's cuts were used.
    await until(() => held.windows.length === 1);
    expect(held.windows[0]?.windows).toEqual([240, 300, 360, 420].map((t) => pair(t).near));
    return { held, it };
  }

  /** Enough turns of the event loop for any scan the planner would still ask to be asked. */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await tick();
  };

  it('asks no scan once the consumer stopped, and stops those it asked', async () => {
    const { held, it } = await pastTheFirstThree();
    expect(held.windows[0]?.signal?.aborted).toBe(false);
    await it.return(undefined);
    expect(held.windows[0]?.signal?.aborted).toBe(true);
    // No pause near any target of that batch: it would widen, were its cuts still wanted.
    held.windows[0]?.answer();
    await settle();
    expect(held.windows).toHaveLength(1);
    expect(held.pairs.every((c) => c.signal?.aborted)).toBe(true);
  });

  it('stops the batches after one whose scan failed: what they asked stops, they ask nothing more', async () => {
    const { held, it } = await pastTheFirstThree();
    const fourth = it.next();
    // No pause near 240 s: its whole window is asked, then the fourth batch's near windows.
    held.windows[0]?.answer([300, 360, 420].map((t) => ({ start: t, end: t + 1 })));
    await until(() => held.windows.length === 3);
    expect(held.windows[2]?.windows).toEqual([480, 540, 600, 660, 720, 780, 840, 900].map((t) => pair(t).near));
    const broken = new Error('ffmpeg could not decode the window');
    held.windows[1]?.fail(broken);
    await expect(fourth).rejects.toBe(broken);
    expect(held.windows[2]?.signal?.aborted).toBe(true);
    // The fourth batch's near windows come back without a pause: it would widen, were its cuts still wanted.
    held.windows[2]?.answer();
    await settle();
    expect(held.windows).toHaveLength(3);
  });

  it('asks nothing for a batch waiting its turn when the batch before it fails; the cuts before come first', async () => {
    const { held, it } = await pastTheFirstThree();
    // The fourth batch waits for the third to ask all its scans; the third's near scan fails.
    const fourth = it.next();
    await settle();
    expect(held.windows).toHaveLength(1);
    const broken = new Error('ffmpeg could not decode the window');
    held.windows[0]?.fail(broken);
    await expect(fourth).rejects.toBe(broken);
    await settle();
    expect(held.windows).toHaveLength(1);
    // A batch that fails stops itself and those after it, not those before: the first batch's cut still comes
    // before its error.
    const again = heldScans();
    const second = planCutsInOrder(opts, again.scan, again.nearOrWide)[Symbol.asyncIterator]();
    const first = second.next();
    await tick();
    again.pairs[1]?.fail(broken);
    await settle();
    // The failed batch's other runs are stopped with it, the batch before goes on.
    expect(again.pairs.map((c) => c.signal?.aborted)).toEqual([false, true]);
    again.pairs[0]?.answer([{ near: [{ start: 59, end: 60 }], wide: null }]);
    expect((await first).value).toEqual({ cut: 59.5, hard: false });
    await expect(second.next()).rejects.toBe(broken);
  });

  it('makes the same cuts at any pool size, for a file of no target, of fewer targets than the pool, or of many', async () => {
    // A pause every 23 s throughout, and a ±15 s window: the urgent targets' narrower search is the whole window.
    const everywhere = Array.from({ length: 270 }, (_, i) => ({ start: 23 * i + 10, end: 23 * i + 11.5 }));
    for (const firstNeeded of [1, 2, 3, 8, 32, 64]) {
      for (const durationS of [50, 100, 200, 920, 6000]) {
        const o = { ...opts, durationS, firstNeeded };
        const eager = await planSplitsByWindows(o, scanner(everywhere).scan);
        const windows = scanner(everywhere);
        const pairs = pairScanner(everywhere);
        const lazy = await collect(planCutsInOrder(o, windows.scan, pairs.nearOrWide));
        expect(
          lazy.map((c) => c.cut),
          `a pool of ${firstNeeded}, ${durationS} s`,
        ).toEqual(eager.cuts);
        // Each target's near window asked for once.
        const near = [...pairs.calls.flatMap((c) => c.targets.map((t) => t.near)), ...windows.calls.flat()].filter(
          (w) => w.toS - w.fromS <= 10,
        );
        expect(near.map((w) => w.fromS + 5)).toEqual(planSplits({ durationS, targetS: 60 }));
      }
    }
  });

  it('goes on behind the cuts a resumed job already made', async () => {
    const all = await collect(planCutsInOrder(opts, scanner(silences).scan));
    const after = all.slice(0, 5).map((c) => c.cut);
    const rest = await collect(planCutsInOrder({ ...opts, after }, scanner(silences).scan));
    expect(rest).toEqual(all.slice(5));
  });
});

describe('nearThenWideScan', () => {
  it('scans the near windows, then the whole ones only where the near ones held no pause', async () => {
    const { scan, calls } = scanner([{ start: 62, end: 63 }]);
    const found = await nearThenWideScan(scan)([pair(60), pair(120)]);
    expect(found).toEqual([
      { near: [{ start: 62, end: 63 }], wide: null },
      { near: [], wide: [] },
    ]);
    expect(calls).toEqual([[pair(60).near, pair(120).near], [pair(120).wide]]);
  });
});
