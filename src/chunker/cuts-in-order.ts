/*
 * The cut points of `cut-points` decided one by one while the file is cut (a lazy mp3 plan): which windows are
 * scanned when, so the first cut waits for as little scanning as it can.
 */
import {
  check,
  chooseCut,
  planSplits,
  resolvePlan,
  type CutPointOptions,
  type ScanWindow,
  type Silence,
} from './cut-points.ts';
import type { NearAndWide, NearOrWide } from './near-or-wide.ts';

/** Windows scanned per call of `planCutsInOrder`: one for the first cut, doubling up to this many. */
export const MAX_BATCH = 32;

/**
 * Targets in a row without any pause in their whole window (for the first WIDEN_UNTIL_BARE targets, ±URGENT_WINDOW_S)
 * after which `planCutsInOrder` looks near targets only.
 */
export const WIDEN_UNTIL_BARE = 3;

/**
 * How far from its target a pause is looked for at the targets the first chunks wait for (the batches not
 * scanned ahead of need), instead of the whole search window: every second decoded there delays the first
 * requests, and the search window (up to ±60 s) is only a preference. Speech pauses every few seconds, so ±15 s
 * still finds one; where it does not, the cut is hard and the overlap repairs it. In continuous sound this cut
 * the three first scans from 3 x 130 s of audio decoded to 3 x 40 s. A bigger pool's urgent targets after the
 * first WIDEN_UNTIL_BARE are searched so first, then in the whole window where that held none.
 */
export const URGENT_WINDOW_S = 15;

/**
 * How a scan is asked: `ahead`, the slicer does not wait for it yet (the scan may yield the cores to what does);
 * `besideRuns`, this many runs of the same plan's scans are asked at the same moment and hold cores (the scan
 * splits across the cores they leave, see SilenceDetector's DetectOptions).
 */
export interface ScanAsk {
  ahead?: boolean;
  besideRuns?: number;
  /**
   * Aborted once nothing can use the scan's answer (the consumer stopped, the plan failed at an earlier batch, or
   * it ended): the scan stops, its ffmpeg with it.
   */
  signal?: AbortSignal;
}

/** A silence scan of windows (see planSplitsByWindows). */
export type WindowScan = (windows: readonly ScanWindow[], opts?: ScanAsk) => Promise<Silence[][]>;

/**
 * A scan of each target's near window and, where that held no pause, of its whole window, in one go (see
 * SilenceDetector.detectNearOrWide): a wide window is decoded only where it is needed, by the same process.
 */
export type NearOrWideScan = (targets: readonly NearAndWide[], opts?: ScanAsk) => Promise<NearOrWide[]>;

/** A NearOrWideScan from a window scan: the near windows, then the wide ones where the near ones held no pause. */
export function nearThenWideScan(scan: WindowScan): NearOrWideScan {
  return async (targets, opts) => {
    const near = await scan(
      targets.map((t) => t.near),
      opts,
    );
    const bare = targets.map((_, k) => k).filter((k) => (near[k]?.length ?? 0) === 0);
    const wide =
      bare.length > 0
        ? await scan(
            bare.map((k) => targets[k]?.wide ?? { fromS: 0, toS: 0 }),
            opts,
          )
        : [];
    return targets.map((_, k) => {
      const found = near[k] ?? [];
      return { near: found, wide: found.length > 0 ? null : (wide[bare.indexOf(k)] ?? []) };
    });
  };
}

/**
 * Pure: the targets in batches of 1, 2, 4 ... MAX_BATCH, a batch ending where the chunks the pool sends first
 * (`firstNeeded`) end: the last of them is not held up by the scan of targets behind it, nor scanned ahead of
 * need. The batch after one cut short is no bigger than it was to be: its chunks are the next ones the pool waits
 * for. `urgent`: how many batches hold those first targets (their first target is one of them), at least one.
 */
export function batchesOf(targets: readonly number[], firstNeeded: number): { batches: number[][]; urgent: number } {
  const batches: number[][] = [];
  let urgent = 0;
  for (let i = 0, size = 1; i < targets.length;) {
    const n = i < firstNeeded ? Math.min(size, firstNeeded - i) : size;
    if (i < firstNeeded || urgent === 0) urgent += 1;
    batches.push(targets.slice(i, i + n));
    i += n;
    if (n === size) size = Math.min(MAX_BATCH, size * 2);
  }
  return { batches, urgent };
}

/**
 * `planSplitsByWindows`' cuts one by one, each as soon as the windows up to its target were scanned: targets
 * are taken in batches of 1, 2, 4 ... MAX_BATCH, so the first cut waits for one window's scan, not for the
 * whole file's. The batches of the first `firstNeeded` targets (the chunks the pool sends first: at a pool of 3
 * the first two batches, at 8 the first four, the last of them cut short at the eighth target) are asked for at
 * once, each target's near and wide windows in one scan that stops after the near one when that held a pause
 * (`nearOrWide`): the scans run in the order asked (see ScanSlots), so the first cut waits for one scan and the
 * next ones follow on the cores it leaves. A later batch is scanned so (near and wide at once) when the batch
 * before found no pause at any target even where it widened (continuous sound, where the wide scan is needed),
 * else near first, then outward where needed (widenOutward).
 * From the second batch on, the batch after the one in use is scanned meanwhile, `ahead` of need. In continuous
 * sound it stops widening the search (WIDEN_UNTIL_BARE), so it can differ from `planSplitsByWindows` there: a
 * pause far from its target, after several targets without any, is not looked for. `after`: cuts already made
 * (a resumed job's), planning goes on behind the last of them. `firstNeeded`: how many chunks the pool sends at once
 * (default 3); at 1 the second batch is scanned ahead of need, behind the first target's scan.
 */
export async function* planCutsInOrder(
  opts: Omit<CutPointOptions, 'silences'> & { nearS: number; after?: readonly number[]; firstNeeded?: number },
  scan: WindowScan,
  nearOrWide: NearOrWideScan = nearThenWideScan(scan),
): AsyncGenerator<{ cut: number; hard: boolean }> {
  const p = resolvePlan(opts);
  check('nearS', opts.nearS, { allowZero: true });
  const firstNeeded = opts.firstNeeded ?? 3;
  const all = planSplits({ durationS: p.durationS, targetS: p.targetS, minTailS: p.minTailS, maxChunkS: p.maxChunkS });
  let prev = opts.after?.at(-1) ?? 0;
  // The targets still ahead: a resumed job's cuts each stood for one target near it.
  const targets = all.filter((t) => t - prev >= p.targetS / 2);
  const lastTarget = all.at(-1);
  const near = Math.min(opts.nearS, p.windowS);
  const around = (t: number, r: number): ScanWindow => ({
    fromS: Math.max(0, t - r),
    toS: Math.min(p.durationS, t + r),
  });
  const { batches, urgent } = batchesOf(targets, firstNeeded);
  /** Targets in a row, up to the last batch scanned, that had no pause anywhere near them. */
  let bareStreak = 0;
  /** Whether the last batch scanned found no pause at any of its targets, even where it widened. */
  let lastBatchBare = false;
  /** Batches whose silences are known, in order; and the last batch started, which the next one waits for. */
  let scanned = 0;
  let previous: Promise<unknown> = Promise.resolve();
  /**
   * Each started batch's stop. The cuts are used in order, so once a batch fails (the plan ends there) or the
   * consumer stops, neither it nor any batch after it may ask another scan, and the runs they asked are stopped
   * (a failed batch's other runs too): a leftover scan would hold a decoder slot of every job's for nothing.
   */
  const stops: AbortController[] = [];
  let failedAt = Infinity;
  const stopFrom = (b: number): void => {
    for (const stop of stops.slice(b)) stop.abort();
  };
  /**
   * The silences near each target of a batch: ±nearS, the whole window where that held none. Continuous sound
   * (music, a noisy room): after WIDEN_UNTIL_BARE targets in a row found no pause even in the whole window, the
   * rest is searched near its targets only, until a pause turns up again. A pause missed so is a hard cut, which
   * the overlap of this path (an mp3 copy carries it) repairs; the wide scans were ~90 % of planning such a file.
   * Whether to widen is decided once the batches before are known (their near scans run meanwhile), so no batch
   * scanned ahead widens past that count.
   */
  const silencesOf = async (
    b: number,
    before: Promise<unknown>,
    askedBefore: Promise<unknown>,
    doneAsking: () => void,
  ): Promise<Silence[][]> => {
    try {
      return await silencesOfBatch(b, before, askedBefore, doneAsking);
    } catch (err) {
      failedAt = Math.min(failedAt, b);
      stopFrom(b);
      throw err;
    } finally {
      doneAsking();
    }
  };
  const silencesOfBatch = async (
    b: number,
    before: Promise<unknown>,
    askedBefore: Promise<unknown>,
    doneAsking: () => void,
  ): Promise<Silence[][]> => {
    const batch = batches[b] ?? [];
    const stop = stops[b]?.signal ?? AbortSignal.abort();
    // The urgent batches are what the first chunks wait for (a pool of 3 sends chunks 0-2 at once: the first
    // two batches); the scans of the rest are ahead of the slicer's need. A pool that sends one chunk at a time
    // waits for the first target alone: the next two must not take the cores from it.
    const ahead = b >= urgent;
    // An urgent batch is asked beside those before it, each at least one run on a core of its own.
    const ask: ScanAsk = b > 0 && !ahead ? { ahead, besideRuns: b, signal: stop } : { ahead, signal: stop };
    const wideS = ahead ? p.windowS : Math.min(p.windowS, URGENT_WINDOW_S);
    const widens = (): boolean => near < wideS && bareStreak < WIDEN_UNTIL_BARE;
    // A scan ahead of need queues behind every scan of the ahead batch before (the slots take them in the order
    // asked), its wide windows included, which it asks only once its near ones are known: the cuts are used in
    // order, so a later batch's near windows must not hold up the wide ones the slicer waits for next.
    if (ahead && b > urgent) await askedBefore;
    stop.throwIfAborted();
    // Near and wide in one scan when nothing is known yet (the urgent batches), or when the batches before
    // are known and the last one found no pause at all.
    const both = widens() && (scanned === 0 || (scanned === b && lastBatchBare));
    const pending = both
      ? nearOrWide(
          batch.map((t) => ({ near: around(t, near), wide: around(t, wideS) })),
          ask,
        )
      : null;
    const found = pending
      ? (await pending).map((t) => t.near)
      : await scan(
          batch.map((t) => around(t, near)),
          ask,
        );
    const bare = batch.map((_, j) => j).filter((j) => (found[j]?.length ?? 0) === 0);
    await before.catch(() => undefined);
    // A wide window scanned with its near one is used even where the streak stopped the widening meanwhile (the
    // batches before, at a pool of more than 3): it was decoded already, its pause costs nothing more.
    if (bare.length > 0 && pending) {
      const wide = (await pending).filter((_, j) => bare.includes(j)).map((t) => t.wide ?? []);
      bare.forEach((j, k) => {
        found[j] = wide[k] ?? [];
      });
    } else if (widens() && bare.length > 0) {
      await widenOutward(batch, bare, found, near, wideS, ask, doneAsking);
    }
    // A bigger pool's urgent targets after the first WIDEN_UNTIL_BARE: their whole window where ±URGENT_WINDOW_S
    // held no pause, unless the streak says continuous sound. Only the first chunks' latency is worth a cut in
    // sound where a pause 15-60 s away would do; a later chunk of the pool waits for this one scan more.
    const later = bare.filter(
      (j) => (found[j]?.length ?? 0) === 0 && targets.indexOf(batch[j] ?? -1) >= WIDEN_UNTIL_BARE,
    );
    if (wideS < p.windowS && widens() && later.length > 0)
      await widenOutward(batch, later, found, wideS, p.windowS, ask, doneAsking);
    // Bare as the streak counts it: no pause even where it widened. A batch whose near windows missed but whose
    // wider ones held a pause is speech with longer sentences, not continuous sound: near first is cheaper there.
    lastBatchBare = found.every((f) => (f?.length ?? 0) === 0);
    for (const f of found) bareStreak = (f?.length ?? 0) === 0 ? bareStreak + 1 : 0;
    scanned = b + 1;
    return found;
  };
  /**
   * The silences of a batch's targets `bare` (no pause within ±fromS) sought outward in rings up to ±toS into
   * `found`: ±URGENT_WINDOW_S, then the whole window only where that held none. Speech with long sentences pauses
   * within 15 s, and a whole window of ±60 s is four times the audio to decode. `doneAsking` once the last ring is
   * asked.
   */
  const widenOutward = async (
    batch: readonly number[],
    bare: readonly number[],
    found: Silence[][],
    fromS: number,
    toS: number,
    ask: ScanAsk,
    doneAsking: () => void,
  ): Promise<void> => {
    const rings = [...new Set([Math.min(URGENT_WINDOW_S, toS), toS])].filter((r) => r > fromS);
    let still = bare;
    for (const [i, r] of rings.entries()) {
      ask.signal?.throwIfAborted();
      // The ring inside held no pause: only what lies outside it is decoded (see scan-pieces.ts).
      const heard = rings[i - 1] ?? fromS;
      const asked = scan(
        still.map((j) => ({ ...around(batch[j] ?? 0, r), heard: around(batch[j] ?? 0, heard) })),
        ask,
      );
      if (i === rings.length - 1) doneAsking();
      const wide = await asked;
      still.forEach((j, k) => {
        found[j] = wide[k] ?? [];
      });
      still = still.filter((j) => (found[j]?.length ?? 0) === 0);
      if (still.length === 0) return;
    }
  };
  const inFlight: Array<Promise<Silence[][]>> = [];
  /** When the last batch started has asked every scan it will ask. */
  let previousAsked: Promise<unknown> = Promise.resolve();
  const start = (b: number): void => {
    const batch = batches[b];
    if (!batch) return;
    const stop = new AbortController();
    // A batch started after one before it failed is of no use either.
    if (b > failedAt) stop.abort();
    stops[b] = stop;
    const asking = { done: (): void => undefined };
    const asked = new Promise<void>((resolve) => (asking.done = resolve));
    const task = silencesOf(b, previous, previousAsked, () => asking.done());
    previous = task;
    previousAsked = asked;
    // A batch still scanning when the consumer stops has no reader: its failure must not go unhandled.
    task.catch(() => undefined);
    inFlight.push(task);
  };
  // The urgent batches at once, and at least the first two: at a pool of 1 the second is scanned ahead of need
  // behind the first.
  const atOnce = Math.max(2, urgent);
  for (let b = 0; b < atOnce; b++) start(b);
  try {
    for (const [b, batch] of batches.entries()) {
      // The next batch is scanned while this one's cuts are used (the scans, not the choice, take the time).
      if (b >= atOnce - 1) start(b + 1);
      const found = await (inFlight.shift() as Promise<Silence[][]>);
      for (const [j, target] of batch.entries()) {
        const picked = chooseCut(p, prev, target, target === lastTarget, found[j] ?? []);
        if (!picked) continue;
        prev = picked.cut;
        yield picked;
      }
    }
  } finally {
    // Ended, failed or stopped by the consumer: whatever is still scanning is not needed.
    stopFrom(0);
  }
}
