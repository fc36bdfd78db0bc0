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
});
