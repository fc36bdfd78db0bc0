import { describe, expect, it } from 'vitest';
import { normaliseWord, type TimedWord } from '../../src/transcribe/overlap.ts';
import { seamByWordTimes } from '../../src/transcribe/seam.ts';
import { stitchTranscript, type StitchChunk } from '../../src/transcribe/stitcher.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';

/** Words as [text, start, end] (absolute s). */
function words(...list: Array<[string, number, number]>): TimedWord[] {
  return list.map(([text, start, end]) => ({ text, norm: normaliseWord(text), start, end }));
}

function stitched(prev: TimedWord[], next: TimedWord[], window: { start: number; end: number }): string {
  const cut = seamByWordTimes(prev, next, window);
  return [...prev.slice(0, cut.keepPrev), ...next.slice(cut.skipNext)].map((w) => w.text).join(' ');
}

// The earlier chunk ends at 12, the later one starts at 8: the overlap is 8..12 and the seam at 10.
const WINDOW = { start: 8, end: 12 };

describe('seamByWordTimes', () => {
  it("keeps the earlier chunk's words up to the middle of the overlap and the later chunk's after it", () => {
    const prev = words(['how', 7, 7.4], ['much', 7.5, 8.9], ['there', 9, 9.6], ['might', 10.1, 10.8], ['be', 11, 11.6]);
    const next = words(['much', 8.2, 8.9], ['there', 9, 9.6], ['might', 10.1, 10.8], ['be', 11, 11.6], ['now', 12, 13]);
    const cut = seamByWordTimes(prev, next, WINDOW);
    expect(cut).toMatchObject({ keepPrev: 3, skipNext: 2, offsetS: 0 });
    expect(stitched(prev, next, WINDOW)).toBe('how much there might be now');
  });

  it('lets time decide where the two chunks heard the overlap differently', () => {
    // Each side is wrong near its own edge; the seam takes the earlier chunk's start and the later one's end.
    const prev = words(['their', 8.5, 9.2], ['money', 9.3, 9.9], ['curly', 10.2, 10.9], ['and', 11.2, 11.9]);
    const next = words(
      ['beer', 8, 8.4],
      ['money', 8.5, 9.2],
      ['there', 9.3, 9.9],
      ['might', 10.2, 10.9],
      ['be', 11.2, 11.9],
    );
    expect(stitched(prev, next, WINDOW)).toBe('their money might be');
  });

  it('gives a word to the side that holds its middle', () => {
    // "consider" spans the seam at 10; its middle (10.2) is on the later side.
    const prev = words(['to', 9, 9.4], ['consider', 9.5, 10.9]);
    const next = words(['to', 9, 9.4], ['consider', 9.5, 10.9], ['how', 11, 11.5]);
    const cut = seamByWordTimes(prev, next, WINDOW);
    expect(cut.keepPrev).toBe(1);
    expect(stitched(prev, next, WINDOW)).toBe('to consider how');
  });

  it("drops a word the earlier chunk's end cut in favour of the later chunk's whole word", () => {
    // A 1 s overlap (11..12, seam 11.5). The earlier chunk heard only the start of "considered" and timed its
    // fragment from 10.9 (middle 11.45, before the seam); the later chunk heard the word whole.
    const window = { start: 11, end: 12 };
    const prev = words(['to', 10.5, 10.9], ['consid', 10.9, 12]);
    const next = words(['o', 11, 11.2], ['considered', 11.3, 12.2], ['how', 12.3, 12.6]);
    expect(stitched(prev, next, window)).toBe('to considered how');
  });

  it("drops a word the later chunk's start cut in favour of the earlier chunk's whole word", () => {
    const window = { start: 11, end: 12 };
    const prev = words(['to', 10.5, 10.9], ['consider', 11, 11.9]);
    // "sider": the later file starts inside the word, and its fragment is timed past the seam.
    const next = words(['sider', 11, 12.1], ['how', 12.3, 12.6]);
    expect(stitched(prev, next, window)).toBe('to consider how');
  });

  it('corrects a small clock offset between the chunks from the words both heard', () => {
    // The later chunk times everything 0.4 s late and hears "there" as "their": in its own clock "their" (middle
    // 10.1) would fall after the seam and be said as well as "there".
    const prev = words(['much', 8.2, 8.8], ['there', 9.4, 10], ['might', 10.4, 11], ['be', 11.2, 11.6]);
    const next = words(['much', 8.6, 9.2], ['their', 9.8, 10.4], ['might', 10.8, 11.4], ['be', 11.6, 12]);
    const cut = seamByWordTimes(prev, next, WINDOW);
    expect(cut.offsetS).toBeCloseTo(0.4);
    expect(cut.matched).toBe(3);
    expect(stitched(prev, next, WINDOW)).toBe('much there might be');
  });

  it('keeps a word both heard once when its two timings fall on either side of the seam', () => {
    // "much" ends just after the seam for the earlier chunk and just before it for the later one; the other words
    // agree, so no offset is corrected: only the text says it is one word.
    const prev = words(['how', 8.5, 9.2], ['much', 9.5, 10.6], ['money', 11, 11.5]);
    const next = words(['how', 8.5, 9.2], ['much', 9.3, 10.5], ['money', 11, 11.5]);
    const lost = stitched(prev, next, WINDOW);
    expect(lost).toBe('how much money');
    const twice = words(['how', 8.5, 9.2], ['much', 9.3, 10.6], ['money', 11, 11.5]);
    const later = words(['how', 8.5, 9.2], ['much', 9.5, 10.7], ['money', 11, 11.5]);
    expect(stitched(twice, later, WINDOW)).toBe('how much money');
  });

  it('does not pair a common word with another instance of it seconds away', () => {
    // Text alone would match "to be" (two words) over "rather" (one), 3.5 s apart.
    const prev = words(['to', 7.5, 7.8], ['be', 7.9, 8.2], ['rather', 9, 9.6]);
    const next = words(['rather', 9, 9.6], ['cold', 10.2, 10.7], ['to', 11, 11.3], ['be', 11.4, 11.8]);
    const cut = seamByWordTimes(prev, next, WINDOW);
    expect(cut.matched).toBe(1);
    expect(stitched(prev, next, WINDOW)).toBe('to be rather cold to be');
  });

  it('keeps every word once when the overlap holds none', () => {
    const prev = words(['before', 6, 7.5]);
    const next = words(['after', 12.5, 13]);
    expect(seamByWordTimes(prev, next, WINDOW)).toEqual({ keepPrev: 1, skipNext: 0, offsetS: 0, matched: 0 });
  });
});

describe('stitchTranscript with the engine word times', () => {
  /** A chunk whose engine gave word times (chunk-relative), one segment per chunk. */
  function heard(index: number, startS: number, durationS: number, list: Array<[string, number, number]>): StitchChunk {
    const text = list.map(([w]) => w).join(' ');
    const result: ChunkResult = {
      text,
      language: 'en',
      segments: [{ start: list[0]?.[1] ?? 0, end: list.at(-1)?.[2] ?? 0, text }],
      words: list.map(([word, start, end]) => ({ word, start, end })),
      timing: 'segment',
    };
    return { index, startS, durationS, status: 'done', result };
  }

  it('places the seam on time where the two chunks heard the overlap differently', () => {
    // Chunk 0 is 0..12, chunk 1's file 8..20: the overlap 8..12, the seam at 10. Text alignment would match the
    // one shared word, "money", and keep both "curly" and "there".
    const chunks = [
      heard(0, 0, 12, [
        ['how', 6, 6.5],
        ['much', 7, 7.6],
        ['their', 8.5, 9.2],
        ['money', 9.3, 9.9],
        ['curly', 10.2, 10.9],
        ['and', 11.2, 11.9],
      ]),
      heard(1, 8, 12, [
        ['beer', 0, 0.4],
        ['money', 0.5, 1.2],
        ['there', 1.3, 1.9],
        ['might', 2.2, 2.9],
        ['be', 3.2, 3.9],
        ['prudent', 4.5, 5.5],
      ]),
    ];
    const t = stitchTranscript({ jobId: 'j', durationS: 20, chunks, overlapS: 4 });
    expect(t.text).toBe('how much their money might be prudent');
    expect(t.words?.map((w) => [w.word, w.start, w.chunk])).toEqual([
      ['how', 6, 0],
      ['much', 7, 0],
      ['their', 8.5, 0],
      ['money', 9.3, 0],
      ['might', 10.2, 1],
      ['be', 11.2, 1],
      ['prudent', 12.5, 1],
    ]);
  });
});
