import { describe, expect, it } from 'vitest';
import { wer, werWords, wordEdits } from '../support/wer.ts';

describe('werWords', () => {
  it('compares words without case or punctuation, keeping apostrophes inside words', () => {
    expect(werWords("He said: 'Don't!' -- twice.")).toEqual(['he', 'said', "don't", 'twice']);
    expect(werWords('  \n ')).toEqual([]);
  });
});

describe('wordEdits', () => {
  it('counts substitutions, insertions and deletions, one each', () => {
    const ref = ['a', 'b', 'c', 'd'];
    expect(wordEdits(['a', 'b', 'c', 'd'], ref)).toBe(0);
    expect(wordEdits(['a', 'x', 'c', 'd'], ref)).toBe(1);
    expect(wordEdits(['a', 'b', 'b', 'c', 'd'], ref)).toBe(1);
    expect(wordEdits(['a', 'c', 'd'], ref)).toBe(1);
    expect(wordEdits([], ref)).toBe(4);
    expect(wordEdits(['x', 'y'], [])).toBe(2);
  });
});

describe('wer', () => {
  it('divides the edits by the reference length', () => {
    expect(wer('the cat sat', 'the cat sat')).toBe(0);
    // Of 6 reference words: "on" heard as a second "sat", "the mat" missing: 3 edits.
    expect(wer('The cat sat sat.', 'the cat sat on the mat')).toBeCloseTo(3 / 6);
    expect(wer('', 'one two')).toBe(1);
  });

  it('refuses an empty reference instead of dividing by zero', () => {
    expect(() => wer('words', ' ')).toThrow(/no words/);
  });
});
