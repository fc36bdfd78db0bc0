import { describe, expect, it } from 'vitest';
import { transcriptFor } from '../../src/jobs/transcript.ts';
import type { ChunkRecord, ChunkStatus } from '../../src/jobs/types.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';
import { queuedJob } from '../fixtures/pipeline.ts';

const job = {
  ...queuedJob('job_0123456789abcdefghijklmnop', 30),
  chunkPlan: { mode: 'encode', format: 'wav', maxBytes: null, overlapS: 2, hardCuts: 2, reason: 'test' } as const,
};

function chunk(index: number, status: ChunkStatus, result: ChunkResult | null): ChunkRecord {
  return {
    jobId: job.id,
    index,
    startS: index * 10,
    durationS: 10,
    status,
    attempts: 1,
    nextTryAt: null,
    errorCode: null,
    errorMessage: null,
    result,
  };
}

/** A result timed from the start of the chunk's file, which begins with the overlap for every chunk after the first. */
const said = (text: string, start: number, end: number): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start, end, text }],
  timing: 'segment',
});

describe('transcriptFor', () => {
  it("times a chunk's words from the start of its file, overlap lead included", () => {
    const t = transcriptFor(
      job,
      [chunk(0, 'done', said('first part', 1, 5)), chunk(1, 'done', said('second part', 3, 6))],
      { partial: false },
    );
    // Chunk 1's file starts 2 s (the overlap) before its own span at 10 s.
    expect(t.segments.map((s) => [s.chunk, s.start, s.end])).toEqual([
      [0, 1, 5],
      [1, 11, 14],
    ]);
  });

  it('shows, while the job runs, the chunks finished so far: failed ones as gap markers, pending ones not at all', () => {
    const chunks = [chunk(0, 'done', said('first part', 1, 5)), chunk(1, 'failed', null), chunk(2, 'sending', null)];
    const t = transcriptFor(job, chunks, { partial: true });
    expect(t.segments.map((s) => [s.chunk, s.text])).toEqual([
      [0, 'first part'],
      [1, '[inaudible: chunk 1 failed]'],
    ]);
    // The final transcript has every chunk: one that did not finish is a gap too.
    expect(transcriptFor(job, chunks, { partial: false }).segments.map((s) => s.chunk)).toEqual([0, 1, 2]);
  });

  it('says the words of an overlap once in the partial view too, with the engine word times, and marks a failed chunk', () => {
    // Chunk 1's file starts 2 s early, at 8: both chunks heard "three four" (8.2..9.8).
    const heard = (list: Array<[string, number, number]>): ChunkResult => ({
      text: list.map(([w]) => w).join(' '),
      language: 'en',
      segments: [{ start: list[0]?.[1] ?? 0, end: list.at(-1)?.[2] ?? 0, text: list.map(([w]) => w).join(' ') }],
      words: list.map(([word, start, end]) => ({ word, start, end })),
      timing: 'segment',
    });
    const chunks = [
      chunk(
        0,
        'done',
        heard([
          ['one', 1, 2],
          ['two', 3, 4],
          ['three', 8.2, 8.8],
          ['four', 9.1, 9.8],
        ]),
      ),
      chunk(
        1,
        'done',
        heard([
          ['three', 0.2, 0.8],
          ['four', 1.1, 1.8],
          ['five', 3, 4],
        ]),
      ),
      chunk(2, 'failed', null),
    ];
    const partial = transcriptFor(job, chunks, { partial: true });
    expect(partial.text).toBe('one two three four five [inaudible: chunk 2 failed]');
    expect(partial.words?.map((w) => [w.word, w.start, w.chunk])).toEqual([
      ['one', 1, 0],
      ['two', 3, 0],
      ['three', 8.2, 0],
      ['four', 9.1, 1],
      ['five', 11, 1],
    ]);
    // A chunk still in flight leaves the words before it as they are.
    const running = transcriptFor(job, [chunks[0] as ChunkRecord, chunk(1, 'sending', null)], { partial: true });
    expect(running.text).toBe('one two three four');
    expect(transcriptFor(job, chunks, { partial: false }).text).toBe(partial.text);
  });
});
