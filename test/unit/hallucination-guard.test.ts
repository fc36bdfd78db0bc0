import { describe, expect, it } from 'vitest';
import { degenerateReason } from '../../src/transcribe/hallucination-guard.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';

const result = (text: string): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start: 0, end: 10, text }],
  timing: 'segment',
});

describe('degenerateReason', () => {
  it('accepts ordinary speech, empty text and a short real repetition', () => {
    expect(
      degenerateReason(result('he was not an ill disposed young man unless to be rather cold hearted'), 10),
    ).toBeNull();
    expect(degenerateReason(result(''), 600)).toBeNull();
    expect(
      degenerateReason(result('no no no, I said we would go to the market on Tuesday and buy the bread'), 8),
    ).toBeNull();
  });

  it('flags the same n-gram repeated over most of the chunk', () => {
    expect(degenerateReason(result('thank you. '.repeat(12)), 60)).toBe('repeated_ngram');
    expect(degenerateReason(result(`So we went home. ${'and then we and then we '.repeat(6)}`), 60)).toBe(
      'repeated_ngram',
    );
  });

  it('flags far more words than the audio could hold', () => {
    expect(degenerateReason(result('word '.repeat(3).concat('alpha beta gamma delta '.repeat(40))), 10)).toBe(
      'too_many_words',
    );
  });

  it('flags the phrases models produce on silence when they are the whole chunk', () => {
    expect(degenerateReason(result('Thank you for watching!'), 30)).toBe('silence_phrase');
    expect(degenerateReason(result('Subtitles by the Amara.org community'), 30)).toBe('silence_phrase');
    expect(
      degenerateReason(result('Thank you for watching the committee hearing, we now turn to item four.'), 30),
    ).toBeNull();
  });
});
