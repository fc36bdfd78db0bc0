/*
 * Pure: where a recording is cut into chunks, given the silences found in it. The cut planner (cut-planner.ts)
 * finds those silences with ffmpeg and hands them here.
 */

/** A stretch of silence in the source, in seconds. */
export interface Silence {
  start: number;
  end: number;
}

export interface CutPointOptions {
  durationS: number;
  /** The chunk length aimed at. */
  targetS: number;
  /** A last chunk shorter than this is merged into the one before. @default min(targetS / 4, 30) */
  minTailS?: number;
  /** No chunk is planned longer than this (the provider's cap). @default Infinity */
  maxChunkS?: number;
  /** Silences to cut in, so no word is split; cuts fall on the midpoint nearest each target. */
  silences?: readonly Silence[];
  /** How far from a target a silence may be to be chosen. @default min(targetS / 10, 30) */
  searchWindowS?: number;
}

/** Throws a TypeError naming `name` unless `value` is a positive (or zero, or infinite, as allowed) number. */
export function check(name: string, value: number, { allowZero = false, allowInfinity = false } = {}): void {
  const ok = (Number.isFinite(value) || (allowInfinity && value === Infinity)) && (allowZero ? value >= 0 : value > 0);
  if (!ok)
    throw new TypeError(
      `Expected \`${name}\` to be a ${allowZero ? 'non-negative' : 'positive'} number, got \`${value}\``,
    );
}

// Millisecond cut points: ffmpeg's -segment_times parses them exactly and they read well in logs.
const ms = (s: number): number => Math.round(s * 1000) / 1000;

/** The options resolved, defaults applied and checked. */
export interface Plan {
  durationS: number;
  targetS: number;
  minTailS: number;
  maxChunkS: number;
  windowS: number;
}

export function resolvePlan(opts: CutPointOptions): Plan {
  const { durationS, targetS } = opts;
  check('durationS', durationS, { allowZero: true });
  check('targetS', targetS);
  const minTailS = opts.minTailS ?? Math.min(targetS / 4, 30);
  const maxChunkS = opts.maxChunkS ?? Infinity;
  const windowS = opts.searchWindowS ?? Math.min(targetS / 10, 30);
  check('minTailS', minTailS, { allowZero: true });
  check('maxChunkS', maxChunkS, { allowInfinity: true });
  check('searchWindowS', windowS, { allowZero: true });
  if (maxChunkS < targetS)
    throw new TypeError(`Expected \`maxChunkS\` (${maxChunkS}) to be at least \`targetS\` (${targetS})`);
  return { durationS, targetS, minTailS, maxChunkS, windowS };
}

function midpoints(silences: readonly Silence[]): number[] {
  return silences
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end) && s.end >= s.start)
    .map((s) => (s.start + s.end) / 2)
    .sort((a, b) => a - b);
}

/** Where the next cut after `prev` is looked for, or null when the rest is the last chunk (`tailCut`: halve it). */
function nextTarget(p: Plan, prev: number): { ideal: number } | { tailCut: number | null } {
  const remaining = p.durationS - prev;
  if (remaining <= p.targetS) return { tailCut: null };
  if (remaining < p.targetS + p.minTailS) {
    // Merging the short tail keeps the last chunk long enough to transcribe with context.
    return { tailCut: remaining > p.maxChunkS ? ms(prev + remaining / 2) : null };
  }
  return { ideal: prev + p.targetS };
}

/** The silence midpoint nearest `ideal` inside the window that keeps every chunk in bounds, else `ideal` (a hard cut). */
function pickCut(p: Plan, prev: number, ideal: number, mids: readonly number[]): { cut: number; hard: boolean } | null {
  let cut = ideal;
  let best = Infinity;
  for (const m of mids) {
    const dist = Math.abs(m - ideal);
    // A silence too close to either end would make a chunk (or the tail) shorter than minTailS.
    if (dist > p.windowS || dist >= best) continue;
    if (m - prev > p.maxChunkS || m - prev < p.minTailS || p.durationS - m < p.minTailS) continue;
    cut = m;
    best = dist;
  }
  cut = ms(cut);
  return cut <= prev || cut >= p.durationS ? null : { cut, hard: best === Infinity };
}

/** Cut points, and how many of them fell on no silence: a word may be split there, which overlap repairs. */
export interface CutPlan {
  cuts: number[];
  hardCuts: number;
}

/**
 * Cut points in seconds, strictly increasing, each inside (0, durationS). N cut points make N + 1
 * chunks. Greedy from the start: each cut lands on the silence midpoint nearest `previous + targetS`
 * inside the search window, else exactly on it; a remainder shorter than `targetS + minTailS` becomes
 * the last chunk (split in two halves only when that would exceed `maxChunkS`).
 */
export function planCutPoints(opts: CutPointOptions): CutPlan {
  const p = resolvePlan(opts);
  const mids = midpoints(opts.silences ?? []);
  const cuts: number[] = [];
  let hardCuts = 0;
  let prev = 0;
  for (;;) {
    const next = nextTarget(p, prev);
    if ('tailCut' in next) {
      if (next.tailCut !== null) {
        cuts.push(next.tailCut);
        hardCuts += 1;
      }
      break;
    }
    const picked = pickCut(p, prev, next.ideal, mids);
    if (picked === null) break;
    cuts.push(picked.cut);
    if (picked.hard) hardCuts += 1;
    prev = picked.cut;
  }
  return { cuts, hardCuts };
}

/** `planCutPoints`' cuts alone. */
export function planSplits(opts: CutPointOptions): number[] {
  return planCutPoints(opts).cuts;
}

export interface ScanWindow {
  fromS: number;
  toS: number;
  /**
   * A stretch inside the window already scanned that held no pause: decoded again only at its edges (see
   * scan-pieces.ts). A scan may also decode it whole; the silences it reports are the same.
   */
  heard?: { fromS: number; toS: number };
}

/**
 * Cut points like `planSplits`', looking for silences only near each target: `scan` returns the silences
 * inside each window it is given (one list per window, in order). The targets are the silence-free plan's
 * cuts (multiples of targetS, the tail rule applied), so every window is known at once and one scan can
 * serve them all; the first scan covers ±nearS, a second one the whole ±searchWindowS only around the
 * targets that had no silence that near. Each cut is the usable silence midpoint nearest its target, else
 * the target (kept within maxChunkS of the previous cut and of the end).
 */
export async function planSplitsByWindows(
  opts: Omit<CutPointOptions, 'silences'> & { nearS: number },
  scan: (windows: readonly ScanWindow[]) => Promise<Silence[][]>,
): Promise<CutPlan> {
  const p = resolvePlan(opts);
  check('nearS', opts.nearS, { allowZero: true });
  const targets = planSplits({
    durationS: p.durationS,
    targetS: p.targetS,
    minTailS: p.minTailS,
    maxChunkS: p.maxChunkS,
  });
  if (targets.length === 0) return { cuts: [], hardCuts: 0 };
  const around = (t: number, r: number): ScanWindow => ({
    fromS: Math.max(0, t - r),
    toS: Math.min(p.durationS, t + r),
  });
  const near = Math.min(opts.nearS, p.windowS);
  const found = await scan(targets.map((t) => around(t, near)));
  const bare = targets.map((_, i) => i).filter((i) => (found[i]?.length ?? 0) === 0);
  if (near < p.windowS && bare.length > 0) {
    const wide = await scan(
      bare.map((i) => ({ ...around(targets[i] ?? 0, p.windowS), heard: around(targets[i] ?? 0, near) })),
    );
    bare.forEach((i, j) => {
      found[i] = wide[j] ?? [];
    });
  }

  const cuts: number[] = [];
  let hardCuts = 0;
  let prev = 0;
  targets.forEach((target, k) => {
    const picked = chooseCut(p, prev, target, k === targets.length - 1, found[k] ?? []);
    if (picked) {
      cuts.push(picked.cut);
      if (picked.hard) hardCuts += 1;
      prev = picked.cut;
    }
  });
  return { cuts, hardCuts };
}

/**
 * The cut for `target` after the cut `prev`: the usable silence midpoint nearest the target, else the target
 * (kept within maxChunkS of prev and, for the last cut, of the end); null when it would not fall after prev.
 */
export function chooseCut(
  p: Plan,
  prev: number,
  target: number,
  last: boolean,
  silences: readonly Silence[],
): { cut: number; hard: boolean } | null {
  const fits = (c: number): boolean =>
    c - prev >= p.minTailS &&
    c - prev <= p.maxChunkS &&
    p.durationS - c >= p.minTailS &&
    (!last || p.durationS - c <= p.maxChunkS);
  let cut = Math.min(target, prev + p.maxChunkS);
  if (last) cut = Math.max(cut, p.durationS - p.maxChunkS);
  let best = Infinity;
  for (const m of midpoints(silences)) {
    const dist = Math.abs(m - target);
    if (dist <= p.windowS && dist < best && fits(m)) {
      cut = m;
      best = dist;
    }
  }
  cut = ms(cut);
  return cut > prev && cut < p.durationS ? { cut, hard: best === Infinity } : null;
}

/** How many chunks `planSplits` makes without silences (the planned count shown before slicing ends). */
export function plannedChunkCount(
  durationS: number,
  targetS: number,
  opts: Pick<CutPointOptions, 'minTailS' | 'maxChunkS'> = {},
): number {
  if (durationS <= 0) return 0;
  return planSplits({ durationS, targetS, ...opts }).length + 1;
}

/**
 * Pure: the chunk length to aim at so a file's chunks fill `lanes` parallel slots evenly. A file that makes n >= 2
 * chunks of `targetS` is cut instead into the next multiple of `lanes` chunks of equal length (at most 2n: no
 * chunk under half the aim) when those finish sooner, counted in rounds of the pool: 384 s at 45 s on 2 lanes
 * makes 9 chunks, 5 rounds of up to 45 s (the last one a lane's alone); 10 chunks of 38.4 s are 5 rounds of
 * 38.4 s. A file of one chunk stays one. Long files are barely touched (their rounds are many).
 */
export function laneTargetS(
  durationS: number,
  targetS: number,
  lanes: number,
  opts: Pick<CutPointOptions, 'minTailS' | 'maxChunkS'> = {},
): number {
  const n = plannedChunkCount(durationS, targetS, opts);
  if (n < 2 || !(lanes >= 2)) return targetS;
  const even = Math.min(Math.ceil(n / lanes) * lanes, 2 * n);
  const rounds = (count: number, lengthS: number): number => Math.ceil(count / lanes) * lengthS;
  const evenS = durationS / even;
  // The plain plan's rounds are counted at full length (its short last chunk still ends a round late).
  return even > n && rounds(even, evenS) < rounds(n, targetS) ? evenS : targetS;
}
