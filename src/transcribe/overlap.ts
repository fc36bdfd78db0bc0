/**
 * De-duplication of the audio two consecutive chunks share. Both chunks transcribed the overlap window, so
 * the end of the earlier one and the start of the later one say the same words (give or take the words cut
 * in half at the chunk edges). Times from a provider are too coarse to cut on, so the word sequences are
 * aligned instead; only when they share nothing recognisable does the cut fall back to the window's middle.
 */

export interface TimedWord {
  /** The word as the provider wrote it, punctuation attached. */
  text: string;
  /** Lower-case letters and digits only; '' for a token that is only punctuation. */
  norm: string;
  /** Absolute seconds (estimated from the segment's times). */
  start: number;
  end: number;
}

export interface OverlapWindow {
  start: number;
  end: number;
}

export interface OverlapOptions {
  /** How far (s) word times may stray from the window and still count as candidates. */
  toleranceS: number;
  /** Fewest aligned words accepted as a match when their times agree only loosely. */
  minRun: number;
  /**
   * Segment-timed providers: one aligned word is enough when its times agree closely. Otherwise a single
   * word counts only when it sits right at both cut edges.
   */
  allowSingleWord: boolean;
  /**
   * When set, the candidates are this many words at each chunk's cut edge instead of the words timed near
   * the window: a chunk-timed result spreads its words evenly, so its word times are positions, not times.
   */
  edgeWords?: number;
}

export interface OverlapCut {
  /** Keep words [0, keepPrev) of the earlier chunk. */
  keepPrev: number;
  /** Keep words [skipNext, end) of the later chunk. */
  skipNext: number;
  method: 'aligned' | 'fragment' | 'midpoint';
  /** Aligned words (0 for the midpoint fallback). */
  matched: number;
}

/** Bounds the O(n*m) alignment: an overlap of a few seconds never holds this many words. */
const MAX_CANDIDATES = 96;

export function normaliseWord(raw: string): string {
  return raw
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]/gu, '');
}

/** Words of one segment, each timed by its share of the segment's characters. */
export function segmentWords(text: string, start: number, end: number): TimedWord[] {
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length === 0) return [];
  const total = tokens.reduce((n, t) => n + t.length, 0) + tokens.length - 1;
  const span = Math.max(0, end - start);
  const words: TimedWord[] = [];
  let offset = 0;
  for (const token of tokens) {
    const wStart = start + (span * offset) / total;
    offset += token.length;
    words.push({ text: token, norm: normaliseWord(token), start: wStart, end: start + (span * offset) / total });
    offset += 1;
  }
  return words;
}

function center(w: TimedWord): number {
  return (w.start + w.end) / 2;
}

interface Match {
  prevAt: number;
  nextAt: number;
  length: number;
  drift: number;
  /** The run touches both cut edges (at most one cut-off word beside it on each side). */
  atEdges: boolean;
}

function better(a: Match, b: Match | null): boolean {
  if (!b || a.length !== b.length) return !b || a.length > b.length;
  if (a.atEdges !== b.atEdges) return a.atEdges;
  return a.drift < b.drift;
}

/** Longest run of equal normalised words between the two candidate lists; edges, then times break ties. */
function longestRun(prev: TimedWord[], prevIdx: number[], next: TimedWord[], nextIdx: number[]): Match | null {
  let best: Match | null = null;
  let row = new Array<number>(nextIdx.length + 1).fill(0);
  for (let i = 1; i <= prevIdx.length; i++) {
    const cur = new Array<number>(nextIdx.length + 1).fill(0);
    const p = prev[prevIdx[i - 1] as number] as TimedWord;
    for (let j = 1; j <= nextIdx.length; j++) {
      const n = next[nextIdx[j - 1] as number] as TimedWord;
      if (p.norm !== n.norm) continue;
      const length = (row[j - 1] as number) + 1;
      cur[j] = length;
      const first = prev[prevIdx[i - length] as number] as TimedWord;
      const firstNext = next[nextIdx[j - length] as number] as TimedWord;
      const drift = Math.abs(first.start - firstNext.start);
      const atEdges = i >= prevIdx.length - 1 && j - length <= 1;
      const m = { prevAt: i - length, nextAt: j - length, length, drift, atEdges };
      if (better(m, best)) best = m;
    }
    row = cur;
  }
  return best;
}

/** Shortest cut-off piece of a word that is trusted to be that word (one letter ends too many words). */
const MIN_FRAGMENT = 2;

function isFragmentOf(piece: string, whole: string, at: 'start' | 'end'): boolean {
  if (piece.length < MIN_FRAGMENT || piece.length >= whole.length) return false;
  return at === 'start' ? whole.startsWith(piece) : whole.endsWith(piece);
}

/**
 * With no shared word, the overlap may hold one word that the cut split: the earlier chunk ends with its
 * beginning ("th") and the later one says it whole ("than"), or the other way round. Keep the whole one.
 */
function fragmentCut(
  prev: TimedWord[],
  prevIdx: number[],
  next: TimedWord[],
  nextIdx: number[],
  window: OverlapWindow,
): OverlapCut | null {
  // Both halves must lie in the window: across a silent overlap, "in" then "inside" are two words.
  const inWindow = (w: TimedWord) => w.end > window.start && w.start < window.end;
  const last = prevIdx.at(-1);
  const tail = last === undefined ? undefined : prev[last];
  if (last !== undefined && tail && last === prev.length - 1 && inWindow(tail)) {
    for (const j of nextIdx.slice(0, 2)) {
      const whole = next[j] as TimedWord;
      if (inWindow(whole) && isFragmentOf(tail.norm, whole.norm, 'start')) {
        return { keepPrev: last, skipNext: j, method: 'fragment', matched: 0 };
      }
    }
  }
  const first = nextIdx[0];
  const head = first === undefined ? undefined : next[first];
  if (first !== undefined && head && first === 0 && inWindow(head)) {
    for (const k of prevIdx.slice(-2).reverse()) {
      const whole = prev[k] as TimedWord;
      if (inWindow(whole) && isFragmentOf(head.norm, whole.norm, 'end')) {
        return { keepPrev: k + 1, skipNext: first + 1, method: 'fragment', matched: 0 };
      }
    }
  }
  return null;
}

function accepted(m: Match, window: OverlapWindow, opts: OverlapOptions): boolean {
  if (m.drift > opts.toleranceS) return false;
  if (m.length >= opts.minRun) return true;
  const closeS = Math.max(0.5, (window.end - window.start) / 2);
  if (opts.allowSingleWord) return m.drift <= closeS;
  // Without usable times, one shared word right at both cut edges (at most one cut-off word beside it)
  // is where the two chunks meet.
  return m.atEdges;
}

/** Where to cut two consecutive chunks' words so the overlap window is said exactly once. */
export function resolveOverlap(
  prev: TimedWord[],
  next: TimedWord[],
  window: OverlapWindow,
  opts: OverlapOptions,
): OverlapCut {
  const edge = opts.edgeWords;
  let prevIdx: number[] = [];
  prev.forEach((w, i) => {
    if (w.norm !== '' && (edge !== undefined || w.end >= window.start - opts.toleranceS)) prevIdx.push(i);
  });
  let nextIdx: number[] = [];
  next.forEach((w, i) => {
    if (w.norm !== '' && (edge !== undefined || w.start <= window.end + opts.toleranceS)) nextIdx.push(i);
  });
  const limit = Math.min(MAX_CANDIDATES, edge ?? MAX_CANDIDATES);
  prevIdx = prevIdx.slice(-limit);
  nextIdx = nextIdx.slice(0, limit);
  const m = longestRun(prev, prevIdx, next, nextIdx);
  if (m && accepted(m, window, opts)) {
    // Split the shared run in its middle: each side keeps the half farther from its own cut edge.
    const half = Math.ceil(m.length / 2);
    const keepPrev = (prevIdx[m.prevAt + half - 1] as number) + 1;
    const skipNext = (nextIdx[m.nextAt + half - 1] as number) + 1;
    return { keepPrev, skipNext, method: 'aligned', matched: m.length };
  }
  const fragment = fragmentCut(prev, prevIdx, next, nextIdx, window);
  if (fragment) return fragment;
  const mid = (window.start + window.end) / 2;
  const found = prev.findIndex((w) => center(w) >= mid);
  const keepPrev = found === -1 ? prev.length : found;
  // Estimated times can put the same word on both sides of the midpoint; a later word whose middle is
  // still inside the last kept word is that word heard again.
  const lastKeptEnd = keepPrev > 0 ? (prev[keepPrev - 1] as TimedWord).end : Number.NEGATIVE_INFINITY;
  const skipNext = next.findIndex((w) => center(w) >= mid && center(w) >= lastKeptEnd);
  return {
    keepPrev,
    skipNext: skipNext === -1 ? next.length : skipNext,
    method: 'midpoint',
    matched: 0,
  };
}
