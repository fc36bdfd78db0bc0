import type { ErrorCode } from '../errors.ts';
import type { ProviderName } from '../transcribe/types.ts';
import { isLive, type AudioInfo, type ChunkState, type ChunkStatus, type JobRecord, type JobStage, type JobStatus, type WebhookState } from './types.ts';

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

/** Why the job's chunks are held, and until when (ISO-8601, null when unknown). */
export interface JobWaiting {
  reason: string;
  until: string | null;
}

/** What the chunks in flight are doing, for a running job (empty once it has ended). */
export interface ChunkActivity {
  chunks_pending: number;
  chunks_sending: number;
  /** The chunks between two attempts (lowest index first, at most MAX_RETRYING_SHOWN). */
  retrying: Array<{ chunk: number; attempts: number; next_try_at: string | null; reason: string | null }>;
  /**
   * Set while the job's chunks are held by something other than their own retry: the provider's circuit
   * (`provider_circuit_open`) or a full data volume (`disk_full`, until the next check for space).
   */
  waiting: JobWaiting | null;
}

export interface JobResource {
  id: string;
  status: JobStatus;
  stage: JobStage | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  /** The name of the API key that created the job, never the key itself. */
  key_name: string | null;
  audio: Omit<AudioInfo, 'demuxer'>;
  progress: JobProgress & ChunkActivity;
  estimate: { cost_usd: number; provider: ProviderName; model: string };
  error: { code: ErrorCode; message: string } | null;
  /** Delivery to callback_url; null without one. Pending with no next attempt while the job runs. */
  webhook: WebhookState | null;
  links: { self: string; transcript: string };
}

const WEBHOOK_NOT_YET: WebhookState = { status: 'pending', attempts: 0, last_status_code: null, last_error: null, next_attempt_at: null };

/** Enough to see what is going on without a 10-hour job's poll growing with its chunk count. */
export const MAX_RETRYING_SHOWN = 20;
/** The chunk transcriber's reason for holding a chunk while the provider's circuit is open. */
export const CIRCUIT_WAIT_REASON = 'provider_circuit_open';

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

/**
 * The job resource of the HTTP contract (api.md), built from the stored rows, and `storageWaiting` for a job
 * being processed: a pause for a full volume cannot be stored (src/resources/storage-guard.ts).
 */
export function toJobResource(job: JobRecord, chunks: readonly ChunkState[], now: number, storageWaiting: JobWaiting | null = null): JobResource {
  const { audio } = job;
  return {
    id: job.id,
    status: job.status,
    stage: job.stage ?? null,
    created_at: job.createdAt,
    updated_at: job.updatedAt,
    completed_at: job.completedAt,
    key_name: job.keyName ?? null,
    audio: publicAudio(audio),
    progress: {
      ...computeProgress({
        status: job.status,
        durationS: audio.duration_s,
        chunksTotal: job.chunksTotal,
        chunks,
        previousPercent: job.percent,
        transcribingStartedAt: parseTime(job.transcribingStartedAt),
        now,
      }),
      ...chunkActivity(job, chunks, storageWaiting),
    },
    estimate: { cost_usd: job.estimate.cost_usd, provider: job.estimate.provider, model: job.estimate.model },
    error: job.errorCode === null ? null : { code: job.errorCode, message: job.errorMessage ?? defaultMessage(job.errorCode) },
    webhook: job.request.callback_url === null ? null : (job.webhook ?? WEBHOOK_NOT_YET),
    links: { self: `/v1/jobs/${job.id}`, transcript: `/v1/jobs/${job.id}/transcript` },
  };
}

/**
 * The chunk states of a running job: how many wait their turn or are with the provider, which ones are between
 * attempts (with the attempt count, next try and last error), and whether the provider's circuit holds them.
 */
export function chunkActivity(
  job: Pick<JobRecord, 'status' | 'chunksTotal'>,
  chunks: readonly ChunkState[],
  storageWaiting: JobWaiting | null = null,
): ChunkActivity {
  if (!isLive(job.status)) return { chunks_pending: 0, chunks_sending: 0, retrying: [], waiting: null };
  const retrying = chunks.filter((c) => c.status === 'retrying');
  const held = retrying.filter((c) => c.errorMessage === CIRCUIT_WAIT_REASON);
  const until = held.map((c) => c.nextTryAt).filter((t): t is string => t !== null).sort().at(-1) ?? null;
  return {
    // Rows of chunks not yet cut may not exist: they are pending too.
    chunks_pending: chunks.filter((c) => c.status === 'pending').length + Math.max(0, job.chunksTotal - chunks.length),
    chunks_sending: chunks.filter((c) => c.status === 'sending').length,
    retrying: retrying.slice(0, MAX_RETRYING_SHOWN).map((c) => ({
      chunk: c.index,
      attempts: c.attempts,
      next_try_at: c.nextTryAt,
      reason: c.errorMessage,
    })),
    // A full volume holds every chunk, the circuit only those due to go next.
    waiting: (job.status === 'processing' ? storageWaiting : null) ?? (held.length > 0 ? { reason: CIRCUIT_WAIT_REASON, until } : null),
  };
}

function parseTime(iso: string | null): number | null {
  const ms = iso === null ? Number.NaN : Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

function defaultMessage(code: ErrorCode): string {
  return `The job failed (${code}).`;
}

/** The audio facts a client sees: everything but the demuxer we force on ffmpeg. */
export function publicAudio(audio: AudioInfo): Omit<AudioInfo, 'demuxer'> {
  const { demuxer: _demuxer, ...rest } = audio;
  return rest;
}
