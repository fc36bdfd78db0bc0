import { describe, expect, it } from 'vitest';
import { normaliseWord, resolveOverlap, segmentWords } from '../../src/transcribe/overlap.ts';
import type { OverlapOptions, TimedWord } from '../../src/transcribe/overlap.ts';

const SEGMENT_TIMED: OverlapOptions = { toleranceS: 3, minRun: 2, allowSingleWord: true };

/** Words one per 0.5 s from `t0`, each 0.4 s long. */
function timed(text: string, t0: number): TimedWord[] {
  return text
    .split(' ')
    .map((w, i) => ({ text: w, norm: normaliseWord(w), start: t0 + i * 0.5, end: t0 + i * 0.5 + 0.4 }));
}

const texts = (words: TimedWord[]) => words.map((w) => w.text).join(' ');

describe('normaliseWord', () => {
  it('ignores case, punctuation and accents when words are compared', () => {
    expect(normaliseWord('Power,')).toBe('power');
    expect(normaliseWord('"Café!"')).toBe('cafe');
    expect(normaliseWord('ill-disposed')).toBe('illdisposed');
    expect(normaliseWord('—')).toBe('');
  });
});

describe('segmentWords', () => {
  it('times each word by its share of the characters when a segment holds several words', () => {
    const words = segmentWords('ab cd', 10, 15);
    expect(words.map((w) => w.text)).toEqual(['ab', 'cd']);
    expect(words[0]?.start).toBe(10);
    expect(words[0]?.end).toBeCloseTo(12);
    expect(words[1]?.start).toBeCloseTo(13);
    expect(words[1]?.end).toBe(15);
  });

  it('returns nothing when the segment is whitespace', () => {
    expect(segmentWords('  \n ', 0, 1)).toEqual([]);
  });
});

describe('resolveOverlap', () => {
  it('cuts inside the shared run when both chunks say the overlap words', () => {
    const prev = timed('one two three four five six', 0); // five at 2.0, six at 2.5
    const next = timed('five six seven eight', 2);
    const cut = resolveOverlap(prev, next, { start: 2, end: 3 }, SEGMENT_TIMED);
    expect(cut.method).toBe('aligned');
    expect(cut.matched).toBe(2);
    expect(`${texts(prev.slice(0, cut.keepPrev))} ${texts(next.slice(cut.skipNext))}`).toBe(
      'one two three four five six seven eight',
    );
  });

  it('aligns despite case and punctuation differences and garbled edge words', () => {
    const prev = timed('and then the Power, to do fo', 0);
    const next = timed('er power to do for them', 1.0);
    const cut = resolveOverlap(prev, next, { start: 1, end: 3.2 }, SEGMENT_TIMED);
    expect(cut.method).toBe('aligned');
    expect(cut.matched).toBe(3);
    expect(`${texts(prev.slice(0, cut.keepPrev))} ${texts(next.slice(cut.skipNext))}`).toBe(
      'and then the Power, to do for them',
    );
  });

  it('falls back to the window midpoint when no words align', () => {
    const prev = timed('alpha beta gamma delta', 0); // centers 0.2 0.7 1.2 1.7
    const next = timed('epsilon zeta eta', 1.0); // centers 1.2 1.7 2.2
    const cut = resolveOverlap(prev, next, { start: 1, end: 2 }, SEGMENT_TIMED);
    expect(cut).toEqual({ keepPrev: 3, skipNext: 1, method: 'midpoint', matched: 0 });
  });

  it('keeps the whole word when the only shared word was cut in two by the chunk edge', () => {
    const prev = timed('one two three fo', 0); // "fo" at 1.5
    const next = timed('four five six', 1.5);
    const cut = resolveOverlap(prev, next, { start: 1.5, end: 2 }, SEGMENT_TIMED);
    expect(cut.method).toBe('fragment');
    expect(`${texts(prev.slice(0, cut.keepPrev))} ${texts(next.slice(cut.skipNext))}`).toBe(
      'one two three four five six',
    );
    const tailWhole = timed('one two three four', 0);
    const headPiece = timed('ur five six', 1.5);
    const cut2 = resolveOverlap(tailWhole, headPiece, { start: 1.5, end: 2 }, SEGMENT_TIMED);
    expect(`${texts(tailWhole.slice(0, cut2.keepPrev))} ${texts(headPiece.slice(cut2.skipNext))}`).toBe(
      'one two three four five six',
    );
  });

  it('does not merge a word with a longer one that starts the same when they lie outside the window', () => {
    const prev = timed('we went in', 0); // "in" ends at 1.4
    const next = timed('inside the house', 3);
    const cut = resolveOverlap(prev, next, { start: 2, end: 2.8 }, SEGMENT_TIMED);
    expect(cut.method).toBe('midpoint');
    expect(`${texts(prev.slice(0, cut.keepPrev))} ${texts(next.slice(cut.skipNext))}`).toBe(
      'we went in inside the house',
    );
  });

  it('rejects a single shared word when its times are far apart', () => {
    const prev = timed('to a b c d e f g h i j k', 0); // "to" at 0
    const next = timed('x y to', 5.5); // "to" at 6.5
    const cut = resolveOverlap(prev, next, { start: 5.5, end: 6.5 }, { ...SEGMENT_TIMED, toleranceS: 10 });
    expect(cut.method).toBe('midpoint');
  });

  it('uses edge words instead of times when edgeWords is set', () => {
    // Times deliberately wrong by 20 s, as a chunk-timed estimate can be.
    const prev = timed('a b c d e f shared words here', 0);
    const next = timed('shared words here g h', 40);
    const cut = resolveOverlap(
      prev,
      next,
      { start: 3, end: 4 },
      {
        toleranceS: Number.POSITIVE_INFINITY,
        minRun: 2,
        allowSingleWord: false,
        edgeWords: 5,
      },
    );
    expect(cut.method).toBe('aligned');
    expect(`${texts(prev.slice(0, cut.keepPrev))} ${texts(next.slice(cut.skipNext))}`).toBe(
      'a b c d e f shared words here g h',
    );
  });
});
