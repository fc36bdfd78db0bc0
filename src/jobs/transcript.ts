import { stitchPartial, stitchTranscript, type StitchChunk } from '../transcribe/stitcher.ts';
import type { Transcript } from '../transcribe/types.ts';
import type { ChunkRecord, JobRecord } from './types.ts';

/**
 * The job's transcript from its chunk rows. Final (`partial: false`): every chunk in order, a failed one as a gap
 * marker. Partial: only the chunks finished so far (done, or failed as a gap marker), for `?partial=true` while a
 * job runs or after it failed. Both say the words of an overlap once. What a transcript shows of the chunks
 * belongs here, for the finished job and the partial view alike.
 */
export function transcriptFor(
  job: Pick<JobRecord, 'id' | 'audio' | 'chunkPlan'>,
  chunks: readonly ChunkRecord[],
  opts: { partial: boolean },
): Transcript {
  const overlapS = job.chunkPlan?.overlapS ?? 0;
  // The store keeps each chunk's own span; a chunk's result is timed from the start of its file, overlap included.
  const stitched: StitchChunk[] = chunks.map((c, i) => {
    const leadS = i > 0 ? Math.min(overlapS, chunks[i - 1]?.durationS ?? 0) : 0;
    return {
      index: c.index,
      startS: c.startS - leadS,
      durationS: c.durationS + leadS,
      status: c.status,
      result: c.result,
    };
  });
  const input = { jobId: job.id, durationS: job.audio.duration_s, chunks: stitched, overlapS };
  return opts.partial ? stitchPartial(input) : stitchTranscript(input);
}
