/**
 * The seam between two overlapping chunks, chosen on the engine's own word times (pocketsphinx `-time yes`,
 * whisper-1 with word granularity). Both chunks heard the overlap; the earlier one hears its end without what
 * follows, the later one its start without what came before, so each is worst near its own edge. The seam is
 * the middle of the overlap: the earlier chunk's words up to it, the later chunk's words after it, a word going
 * to the side that holds its middle. A word cut by a chunk's edge is dropped in favour of the other side's
 * whole word. The text only confirms: matching words give a small clock offset between the two chunks, and a
 * word both sides heard is kept once even when its two timings fall on either side of the seam.
 * Without word times the stitcher falls back to text alignment (overlap.ts).
 */
import type { TimedWord } from './overlap.ts';

export interface SeamWindow {
  /** Start of the later chunk's file (absolute s). */
  start: number;
  /** End of the earlier chunk's file (absolute s). */
  end: number;
}

export interface SeamCut {
  /** Keep words [0, keepPrev) of the earlier chunk. */
  keepPrev: number;
  /** Keep words [skipNext, end) of the later chunk. */
  skipNext: number;
  /** How much later (s) the later chunk times the words both heard (0 unless two or more matched). */
  offsetS: number;
  /** Words both chunks heard, matched on text and time. */
  matched: number;
}

/** A word ending (starting) this close to the earlier (later) chunk's edge is taken as cut by it. */
const EDGE_S = 0.05;
/** Two chunks' clocks never disagree by more than this; a text match farther apart is a different word. */
const MAX_OFFSET_S = 1;
/** Once the offset is known, a match must agree with it to this much to be the same word heard twice. */
const SAME_WORD_S = 0.3;
/** Bounds the O(n*m) match: an overlap of a few seconds never holds this many words. */
const MAX_CANDIDATES = 96;

const center = (w: TimedWord): number => (w.start + w.end) / 2;

interface Pair {
  i: number;
  j: number;
  delta: number;
}

/**
 * The longest common subsequence of the two chunks' words near the window, matching a word only to one said
 * within MAX_OFFSET_S of it, so a common word ("the") never pairs with another instance seconds away.
 */
function matchWords(prev: readonly TimedWord[], next: readonly TimedWord[], window: SeamWindow): Pair[] {
  const near = (w: TimedWord) =>
    w.norm !== '' && w.end > window.start - MAX_OFFSET_S && w.start < window.end + MAX_OFFSET_S;
  const pi = prev.flatMap((w, i) => (near(w) ? [i] : [])).slice(-MAX_CANDIDATES);
  const nj = next.flatMap((w, j) => (near(w) ? [j] : [])).slice(0, MAX_CANDIDATES);
  const len: number[][] = Array.from({ length: pi.length + 1 }, () => new Array<number>(nj.length + 1).fill(0));
  const same = (a: number, b: number): boolean => {
    const p = prev[pi[a] as number] as TimedWord;
    const n = next[nj[b] as number] as TimedWord;
    return p.norm === n.norm && Math.abs(center(n) - center(p)) <= MAX_OFFSET_S;
  };
  for (let a = pi.length - 1; a >= 0; a--) {
    const row = len[a] as number[];
    const below = len[a + 1] as number[];
    for (let b = nj.length - 1; b >= 0; b--) {
      row[b] = same(a, b) ? (below[b + 1] as number) + 1 : Math.max(below[b] as number, row[b + 1] as number);
    }
  }
  const pairs: Pair[] = [];
  let a = 0;
  let b = 0;
  while (a < pi.length && b < nj.length) {
    if (same(a, b) && (len[a] as number[])[b] === ((len[a + 1] as number[])[b + 1] as number) + 1) {
      const i = pi[a] as number;
      const j = nj[b] as number;
      pairs.push({ i, j, delta: center(next[j] as TimedWord) - center(prev[i] as TimedWord) });
      a++;
      b++;
    } else if ((len[a + 1] as number[])[b] === (len[a] as number[])[b]) a++;
    else b++;
  }
  return pairs;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Where to cut two consecutive chunks' words (absolute times) so the overlap window is said exactly once. */
export function seamByWordTimes(prev: readonly TimedWord[], next: readonly TimedWord[], window: SeamWindow): SeamCut {
  const pairs = matchWords(prev, next, window);
  // One match may be a coincidence; two or more say how the later chunk's clock sits against the earlier one's.
  const offsetS = pairs.length >= 2 ? median(pairs.map((p) => p.delta)) : 0;
  const seam = (window.start + window.end) / 2;
  const cutAtEnd = (w: TimedWord) => w.end >= window.end - EDGE_S;
  const cutAtStart = (w: TimedWord) => w.start - offsetS <= window.start + EDGE_S;

  // The later chunk's first word, when its edge cut it and it reaches past the seam: the earlier chunk's words
  // up to its end stand in for it.
  const headCut = next.find((w) => center(w) - offsetS >= seam - EDGE_S);
  const prevSeam = headCut && cutAtStart(headCut) ? Math.max(seam, headCut.end - offsetS) : seam;
  let keepPrev = prev.findIndex((w) => center(w) >= prevSeam || cutAtEnd(w));
  if (keepPrev === -1) keepPrev = prev.length;
  // Likewise the earlier chunk's word cut by its end that starts before the seam: the later chunk's take it.
  const dropped = prev[keepPrev];
  const nextSeam = dropped && cutAtEnd(dropped) && center(dropped) < prevSeam ? dropped.start : seam;
  let skipNext = next.findIndex((w) => center(w) - offsetS >= nextSeam && !cutAtStart(w));
  if (skipNext === -1) skipNext = next.length;

  // The text confirms: a word both heard is kept from exactly one side, whatever its two timings say.
  const same = pairs.filter((p) => Math.abs(p.delta - offsetS) <= SAME_WORD_S);
  for (const p of same) {
    if (p.i < keepPrev && p.j >= skipNext) skipNext = p.j + 1;
    else if (p.i >= keepPrev && p.j < skipNext) skipNext = p.j;
  }
  return { keepPrev, skipNext, offsetS, matched: same.length };
}
