import { describe, expect, it } from 'vitest';
import { gapMarker, isGapMarker, joinText, stitchPartial, stitchTranscript } from '../../src/transcribe/stitcher.ts';
import type { StitchChunk } from '../../src/transcribe/stitcher.ts';
import type { ChunkResult, Segment, Transcript } from '../../src/transcribe/types.ts';

const ORIGINAL =
  'And Mister John Dashwood had then leisure to consider how much there might be prudently in his power ' +
  'to do for them. He was not an ill-disposed young man, unless to be rather cold-hearted and rather ' +
  'selfish is to be ill disposed.';

interface Word {
  text: string;
  start: number;
  end: number;
}

/** Word i lasts 0.4 s, then 0.1 s of silence; `pauses` adds extra silence after the given word. */
function timeline(text: string, pauses: Record<number, number> = {}): Word[] {
  let t = 0;
  return text.split(' ').map((text, i) => {
    const w = { text, start: t, end: t + 0.4 };
    t += 0.5 + (pauses[i] ?? 0);
    return w;
  });
}

interface CutOptions {
  /** A word cut by the chunk edge comes back as its half inside the chunk. */
  garble?: boolean;
  timing?: 'segment' | 'chunk';
  wordsPerSegment?: number;
  rewrite?: (w: string) => string;
}

/** What a provider would return for the audio [startS, endS) of the timeline (chunk-relative times). */
function transcribe(words: Word[], startS: number, endS: number, opts: CutOptions = {}): ChunkResult {
  const dur = endS - startS;
  const inside = words
    .filter((w) => w.end > startS && w.start < endS)
    .map((w) => {
      let text = opts.rewrite ? opts.rewrite(w.text) : w.text;
      if (opts.garble && w.start < startS) text = text.slice(Math.ceil(text.length / 2));
      if (opts.garble && w.end > endS) text = text.slice(0, Math.floor(text.length / 2));
      return { text, start: Math.max(0, w.start - startS), end: Math.min(dur, w.end - startS) };
    });
  const text = inside.map((w) => w.text).join(' ');
  if (opts.timing === 'chunk')
    return { text, language: 'en', segments: [{ start: 0, end: dur, text }], timing: 'chunk' };
  const per = opts.wordsPerSegment ?? 4;
  const segments: Segment[] = [];
  for (let i = 0; i < inside.length; i += per) {
    const group = inside.slice(i, i + per);
    segments.push({
      start: group[0]?.start ?? 0,
      end: group.at(-1)?.end ?? 0,
      text: group.map((w) => w.text).join(' '),
    });
  }
  return { text, language: 'en', segments, timing: 'segment' };
}

function chunk(index: number, startS: number, endS: number, result: ChunkResult | null): StitchChunk {
  return { index, startS, durationS: endS - startS, status: result ? 'done' : 'failed', result };
}

function expectWellFormed(t: Transcript): void {
  let prev = 0;
  for (const s of t.segments) {
    expect(s.start).toBeGreaterThanOrEqual(prev);
    expect(s.end).toBeGreaterThanOrEqual(s.start);
    expect(s.end).toBeLessThanOrEqual(t.duration_s);
    expect(s.text.trim()).not.toBe('');
    prev = s.start;
  }
}

describe('stitchTranscript overlap de-duplication', () => {
  const words = timeline(ORIGINAL);
  const total = (words.at(-1)?.end ?? 0) + 0.3;

  it('reproduces the original text when the overlap falls on word boundaries', () => {
    const chunks = [chunk(0, 0, 11, transcribe(words, 0, 11)), chunk(1, 10, total, transcribe(words, 10, total))];
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 1 });
    expect(t.text).toBe(ORIGINAL);
    expectWellFormed(t);
  });

  it('reproduces the original text when the overlap edges cut words in half', () => {
    const chunks = [
      chunk(0, 0, 11.2, transcribe(words, 0, 11.2, { garble: true })),
      chunk(1, 9.7, total, transcribe(words, 9.7, total, { garble: true })),
    ];
    expect(chunks[0]?.result?.text.endsWith(' them. H')).toBe(true);
    expect(chunks[1]?.result?.text.startsWith('o for ')).toBe(true);
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 1.5 });
    expect(t.text).toBe(ORIGINAL);
    expectWellFormed(t);
  });

  it('reproduces the original by alignment when the provider times of the later chunk are off', () => {
    // Segment times 0.8 s late: cutting at the window's middle by time alone would repeat a word.
    const late = transcribe(words, 9.7, total, { garble: true });
    late.segments = late.segments.map((s) => ({ ...s, start: s.start + 0.8, end: s.end + 0.8 }));
    const chunks = [chunk(0, 0, 11.2, transcribe(words, 0, 11.2, { garble: true })), chunk(1, 9.7, total, late)];
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 1.5 });
    expect(t.text).toBe(ORIGINAL);
    expectWellFormed(t);
  });

  it('aligns across case and punctuation differences between the two chunks', () => {
    const shout = (w: string) => `${w.toUpperCase().replace(/[.,]/g, '')}`;
    const a = transcribe(words, 0, 11);
    const b = transcribe(words, 10, total, {
      rewrite: (w) => (words.findIndex((x) => x.text === w) < 22 ? shout(w) : w),
    });
    const t = stitchTranscript({
      jobId: 'j',
      durationS: total,
      chunks: [chunk(0, 0, 11, a), chunk(1, 10, total, b)],
      overlapS: 1,
    });
    expect(t.text.split(' ')).toHaveLength(ORIGINAL.split(' ').length);
    expect(t.text.toLowerCase().replace(/[.,]/g, '')).toBe(ORIGINAL.toLowerCase().replace(/[.,]/g, ''));
  });

  it('reproduces the original across three chunks with overlaps', () => {
    const chunks = [
      chunk(0, 0, 8, transcribe(words, 0, 8, { garble: true })),
      chunk(1, 7, 16.2, transcribe(words, 7, 16.2, { garble: true })),
      chunk(2, 15.2, total, transcribe(words, 15.2, total, { garble: true })),
    ];
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 1 });
    expect(t.text).toBe(ORIGINAL);
    expectWellFormed(t);
  });

  it('falls back to the midpoint and keeps every word once when the overlap is silence', () => {
    const paused = timeline(ORIGINAL, { 19: 2.5 }); // word 19 ends at 9.9, word 20 starts at 12.5
    const end = (paused.at(-1)?.end ?? 0) + 0.3;
    const chunks = [chunk(0, 0, 11.5, transcribe(paused, 0, 11.5)), chunk(1, 10.5, end, transcribe(paused, 10.5, end))];
    const t = stitchTranscript({ jobId: 'j', durationS: end, chunks, overlapS: 1 });
    expect(t.text).toBe(ORIGINAL);
    expectWellFormed(t);
  });

  it('keeps one version of a word the two chunks heard differently when nothing else aligns', () => {
    const text = 'alpha beta gamma delta epsilon zeta eta theta iota kappa colour lambda mu nu xi omicron pi rho';
    const tl = timeline(text); // colour: [5.0, 5.4]
    const end = (tl.at(-1)?.end ?? 0) + 0.3;
    const a = transcribe(tl, 0, 5.45);
    const b = transcribe(tl, 4.95, end, { rewrite: (w) => (w === 'colour' ? 'color' : w) });
    const t = stitchTranscript({
      jobId: 'j',
      durationS: end,
      chunks: [chunk(0, 0, 5.45, a), chunk(1, 4.95, end, b)],
      overlapS: 0.5,
    });
    expect(t.text).toBe(text);
  });

  it('stitches chunk-timed results (one segment per chunk) and still removes the overlap', () => {
    const chunks = [
      chunk(0, 0, 11, transcribe(words, 0, 11, { timing: 'chunk' })),
      chunk(1, 10, total, transcribe(words, 10, total, { timing: 'chunk' })),
    ];
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 1 });
    expect(t.text).toBe(ORIGINAL);
    expect(t.segments).toHaveLength(2);
    expectWellFormed(t);
  });

  it('keeps everything when chunks do not overlap', () => {
    const chunks = [chunk(0, 0, 10, transcribe(words, 0, 10)), chunk(1, 10, total, transcribe(words, 10, total))];
    const t = stitchTranscript({ jobId: 'j', durationS: total, chunks, overlapS: 0 });
    expect(t.text).toBe(ORIGINAL);
  });
});

describe('stitchTranscript', () => {
  const seg = (start: number, end: number, text: string): Segment => ({ start, end, text });
  const result = (segments: Segment[], language: string | null = 'en'): ChunkResult => ({
    text: segments.map((s) => s.text).join(' '),
    language,
    segments,
    timing: 'segment',
  });

  it('offsets segment times by the chunk start and clamps them into the recording', () => {
    const t = stitchTranscript({
      jobId: 'job_1',
      durationS: 25,
      overlapS: 0,
      chunks: [
        chunk(0, 0, 10, result([seg(-1, 4, 'first'), seg(4, 12, 'second')])),
        chunk(1, 10, 25, result([seg(2, 5, 'third'), seg(14, 30, 'fourth')])),
      ],
    });
    expect(t.segments).toEqual([
      { start: 0, end: 4, text: 'first', chunk: 0 },
      { start: 4, end: 10, text: 'second', chunk: 0 },
      { start: 12, end: 15, text: 'third', chunk: 1 },
      { start: 24, end: 25, text: 'fourth', chunk: 1 },
    ]);
    expect(t).toMatchObject({ job_id: 'job_1', duration_s: 25, text: 'first second third fourth' });
  });

  it('puts a gap marker over the whole time of a failed chunk', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 30,
      overlapS: 0,
      chunks: [
        chunk(0, 0, 10, result([seg(0, 9, 'before')])),
        chunk(1, 10, 20, null),
        chunk(2, 20, 30, result([seg(1, 2, 'after')])),
      ],
    });
    expect(t.segments[1]).toEqual({ start: 10, end: 20, text: gapMarker(1), chunk: 1 });
    expect(t.text).toBe('before [inaudible: chunk 1 failed] after');
    expect(isGapMarker(t.segments[1]?.text ?? '')).toBe(true);
  });

  it('orders chunks by index and keeps starts non-decreasing when a provider misorders segments', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 20,
      overlapS: 0,
      chunks: [chunk(1, 10, 20, result([seg(0, 1, 'c')])), chunk(0, 0, 10, result([seg(5, 6, 'a'), seg(2, 3, 'b')]))],
    });
    expect(t.segments.map((s) => s.text)).toEqual(['a', 'b', 'c']);
    expect(t.segments.map((s) => s.start)).toEqual([5, 5, 10]);
    expectWellFormed(t);
  });

  it('drops empty segments and joins text without double spaces or spaces before punctuation', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 10,
      overlapS: 0,
      chunks: [
        chunk(
          0,
          0,
          10,
          result([seg(0, 1, '  Hello  there '), seg(1, 2, '   '), seg(2, 3, ', friend'), seg(3, 4, '. Next  one ?')]),
        ),
      ],
    });
    expect(t.segments).toHaveLength(3);
    expect(t.text).toBe('Hello there, friend. Next one?');
  });

  it('uses the most common chunk language and ignores chunks without one', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 40,
      overlapS: 0,
      chunks: [
        chunk(0, 0, 10, result([seg(0, 1, 'hola')], 'es')),
        chunk(1, 10, 20, result([seg(0, 1, 'hello')], 'en')),
        chunk(2, 20, 30, result([seg(0, 1, 'hi')], null)),
        chunk(3, 30, 40, result([seg(0, 1, 'hey')], 'en')),
      ],
    });
    expect(t.language).toBe('en');
  });

  it('makes one segment from the text when a chunk-timed result has no segments', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 20,
      overlapS: 0,
      chunks: [
        {
          index: 0,
          startS: 5,
          durationS: 10,
          status: 'done',
          result: { text: 'whole chunk', language: null, segments: [], timing: 'chunk' },
        },
      ],
    });
    expect(t.segments).toEqual([{ start: 5, end: 15, text: 'whole chunk', chunk: 0 }]);
    expect(t.language).toBeNull();
  });

  it('marks chunks that never finished as gaps in the final transcript', () => {
    const t = stitchTranscript({
      jobId: 'j',
      durationS: 20,
      overlapS: 0,
      chunks: [
        chunk(0, 0, 10, result([seg(0, 1, 'done')])),
        { index: 1, startS: 10, durationS: 10, status: 'pending', result: null },
      ],
    });
    expect(t.segments.map((s) => s.text)).toEqual(['done', gapMarker(1)]);
  });
});

describe('stitchPartial', () => {
  it('includes finished and failed chunks and leaves out chunks still in flight', () => {
    const r: ChunkResult = {
      text: 'x',
      language: 'en',
      segments: [{ start: 0, end: 1, text: 'x' }],
      timing: 'segment',
    };
    const t = stitchPartial({
      jobId: 'j',
      durationS: 40,
      overlapS: 0,
      chunks: [
        { index: 0, startS: 0, durationS: 10, status: 'done', result: r },
        { index: 1, startS: 10, durationS: 10, status: 'sending', result: null },
        { index: 2, startS: 20, durationS: 10, status: 'failed', result: null },
        { index: 3, startS: 30, durationS: 10, status: 'retrying', result: null },
      ],
    });
    expect(t.segments.map((s) => [s.chunk, s.text])).toEqual([
      [0, 'x'],
      [2, gapMarker(2)],
    ]);
  });
});

describe('joinText', () => {
  it('joins CJK pieces without spaces and latin pieces with one', () => {
    expect(joinText(['今日は', '晴れです。'])).toBe('今日は晴れです。');
    expect(joinText(['( see', 'this )', 'now'])).toBe('(see this) now');
  });
});
