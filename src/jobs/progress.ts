import { isLive, type ChunkStatus, type JobStatus } from './types.ts';

export interface ProgressInput {
  status: JobStatus;
  durationS: number;
  /** Planned count until slicing has finished, then the real one. */
  chunksTotal: number;
  chunks: ReadonlyArray<{ status: ChunkStatus; durationS: number }>;
  /** Highest percent reported before (the stored job's `percent`). */
  previousPercent: number;
  /** Epoch ms when the first chunk went to the provider, null before. */
  transcribingStartedAt: number | null;
  /** Epoch ms. */
  now: number;
}

export interface JobProgress {
  chunks_total: number;
  chunks_done: number;
  chunks_failed: number;
  chunks_retrying: number;
  percent: number;
  eta_s: number | null;
  audio_s_done: number;
}

/** Highest percent shown before a job has completed: 100 means "the transcript is there". */
export const MAX_RUNNING_PERCENT = 99.9;

const round1 = (v: number) => Math.round(v * 10) / 10;

export function computeProgress(input: ProgressInput): JobProgress {
  const count = (s: ChunkStatus) => input.chunks.filter((c) => c.status === s).length;
  const seconds = (pred: (s: ChunkStatus) => boolean) =>
    input.chunks.reduce((sum, c) => (pred(c.status) ? sum + Math.max(0, c.durationS) : sum), 0);
  const durationS = Math.max(0, input.durationS);
  const chunksTotal = Math.max(input.chunksTotal, input.chunks.length);
  const known = seconds(() => true);
  // Overlapping chunks add up to more than the recording; once every chunk row exists their sum is the
  // real amount of work, before that the recording's duration is the best guess.
  const workS = input.chunks.length >= chunksTotal && known > 0 ? known : Math.max(durationS, known);
  const doneS = seconds((s) => s === 'done');
  // A failed chunk is finished work too: nothing more will happen to it.
  const settledS = seconds((s) => s === 'done' || s === 'failed');
  const fraction = workS > 0 ? Math.min(1, settledS / workS) : 0;
  const previous = Math.max(0, input.previousPercent);

  let percent: number;
  if (input.status === 'completed') percent = 100;
  else percent = Math.min(MAX_RUNNING_PERCENT, Math.max(previous, round1(fraction * 100)));

  let eta: number | null = null;
  if (!isLive(input.status)) eta = 0;
  else if (fraction >= 1) eta = 0;
  else if (fraction > 0 && input.transcribingStartedAt !== null) {
    const elapsedS = Math.max(0, input.now - input.transcribingStartedAt) / 1000;
    eta = Math.round((elapsedS * (1 - fraction)) / fraction);
  }

  return {
    chunks_total: chunksTotal,
    chunks_done: count('done'),
    chunks_failed: count('failed'),
    chunks_retrying: count('retrying'),
    percent,
    eta_s: eta,
    audio_s_done: round1(workS > 0 ? Math.min(durationS, (doneS * durationS) / workS) : 0),
  };
}
