import { parseSync } from 'subtitle';
import { describe, expect, it } from 'vitest';
import { renderTranscript } from '../../src/transcribe/formats.ts';
import { stitchTranscript, type StitchChunk } from '../../src/transcribe/stitcher.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';

const result = (text: string, timing: ChunkResult['timing'], end: number): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start: 0, end, text }],
  timing,
});
const chunk = (index: number, r: ChunkResult | null): StitchChunk => ({
  index,
  startS: index * 10,
  durationS: 10,
  status: r ? 'done' : 'failed',
  result: r,
});
const stitch = (chunks: StitchChunk[]) =>
  stitchTranscript({ jobId: 'j', durationS: 10 * chunks.length, chunks, overlapS: 0 });

describe('transcript timing flag', () => {
  it('says segment, chunk or mixed from the chunk results, ignoring failed chunks', () => {
    expect(stitch([chunk(0, result('a b', 'segment', 4)), chunk(1, null)]).timing).toBe('segment');
    expect(stitch([chunk(0, result('a b', 'chunk', 10)), chunk(1, null)]).timing).toBe('chunk');
    expect(stitch([chunk(0, result('a b', 'chunk', 10)), chunk(1, result('c d', 'segment', 3))]).timing).toBe('mixed');
  });

  it('adds a NOTE to the vtt of a chunk-timed transcript that a subtitle parser still reads cue for cue', () => {
    const chunkTimed = stitch([chunk(0, result('he was not an ill disposed young man', 'chunk', 10))]);
    const vtt = renderTranscript(chunkTimed, 'vtt').body;
    expect(vtt).toMatch(/^WEBVTT\n\nNOTE The model gave no segment times[^\n]*\n\n00:00:00\.000 --> /);
    const cues = parseSync(vtt).filter((n) => n.type === 'cue');
    expect(cues.map((c) => (c.data as { text: string }).text).join(' ')).toBe('he was not an ill disposed young man');

    const segmentTimed = stitch([chunk(0, result('he was not an ill disposed young man', 'segment', 3))]);
    expect(renderTranscript(segmentTimed, 'vtt').body).not.toContain('NOTE');
  });
});
