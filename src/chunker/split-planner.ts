/** A stretch of silence in the source, in seconds. */
export interface Silence {
  start: number;
  end: number;
}

export interface SplitPlanOptions {
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

function check(name: string, value: number, { allowZero = false, allowInfinity = false } = {}): void {
  const ok = (Number.isFinite(value) || (allowInfinity && value === Infinity)) && (allowZero ? value >= 0 : value > 0);
  if (!ok) throw new TypeError(`Expected \`${name}\` to be a ${allowZero ? 'non-negative' : 'positive'} number, got \`${value}\``);
}

// Millisecond cut points: ffmpeg's -segment_times parses them exactly and they read well in logs.
const ms = (s: number): number => Math.round(s * 1000) / 1000;

/**
 * Cut points in seconds, strictly increasing, each inside (0, durationS). N cut points make N + 1
 * chunks. Greedy from the start: each cut lands on the silence midpoint nearest `previous + targetS`
 * inside the search window, else exactly on it; a remainder shorter than `targetS + minTailS` becomes
 * the last chunk (split in two halves only when that would exceed `maxChunkS`).
 */
export function planSplits(opts: SplitPlanOptions): number[] {
  const { durationS, targetS } = opts;
  check('durationS', durationS, { allowZero: true });
  check('targetS', targetS);
  const minTailS = opts.minTailS ?? Math.min(targetS / 4, 30);
  const maxChunkS = opts.maxChunkS ?? Infinity;
  const windowS = opts.searchWindowS ?? Math.min(targetS / 10, 30);
  check('minTailS', minTailS, { allowZero: true });
  check('maxChunkS', maxChunkS, { allowInfinity: true });
  check('searchWindowS', windowS, { allowZero: true });
  if (maxChunkS < targetS) throw new TypeError(`Expected \`maxChunkS\` (${maxChunkS}) to be at least \`targetS\` (${targetS})`);

  const mids = (opts.silences ?? [])
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end) && s.end >= s.start)
    .map((s) => (s.start + s.end) / 2)
    .sort((a, b) => a - b);

  const cuts: number[] = [];
  let prev = 0;
  for (;;) {
    const remaining = durationS - prev;
    if (remaining <= targetS) break;
    if (remaining < targetS + minTailS) {
      // Merging the short tail keeps the last chunk long enough to transcribe with context.
      if (remaining > maxChunkS) cuts.push(ms(prev + remaining / 2));
      break;
    }
    const ideal = prev + targetS;
    let cut = ideal;
    let best = Infinity;
    for (const m of mids) {
      const dist = Math.abs(m - ideal);
      // A silence too close to either end would make a chunk (or the tail) shorter than minTailS.
      if (dist > windowS || dist >= best) continue;
      if (m - prev > maxChunkS || m - prev < minTailS || durationS - m < minTailS) continue;
      cut = m;
      best = dist;
    }
    cut = ms(cut);
    if (cut <= prev || cut >= durationS) break;
    cuts.push(cut);
    prev = cut;
  }
  return cuts;
}

/** How many chunks `planSplits` makes without silences (the planned count shown before slicing ends). */
export function plannedChunkCount(durationS: number, targetS: number, opts: Pick<SplitPlanOptions, 'minTailS' | 'maxChunkS'> = {}): number {
  if (durationS <= 0) return 0;
  return planSplits({ durationS, targetS, ...opts }).length + 1;
}
