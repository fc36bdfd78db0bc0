import type { ErrorCode } from '../errors.ts';
import { computeProgress } from '../jobs/progress.ts';
import { isLive, type AudioInfo, type ChunkState, type JobRecord, type WebhookState } from '../jobs/types.ts';
import type { JobWaiting } from '../resources/storage-guard.ts';
import type { JobResource } from './schemas.ts';

/** What the chunks in flight are doing, for a running job (empty once it has ended): part of progress. */
export type ChunkActivity = Pick<JobResource['progress'], 'chunks_pending' | 'chunks_sending' | 'retrying' | 'waiting'>;

const WEBHOOK_NOT_YET: WebhookState = {
  status: 'pending',
  attempts: 0,
  last_status_code: null,
  last_error: null,
  next_attempt_at: null,
};

/** Enough to see what is going on without a 10-hour job's poll growing with its chunk count. */
export const MAX_RETRYING_SHOWN = 20;
/** The chunk transcriber's reason for holding a chunk while the provider's circuit is open. */
export const CIRCUIT_WAIT_REASON = 'provider_circuit_open';

/**
 * The job resource of the HTTP contract (api.md), built from the stored rows, and `storageWaiting` for a job
 * being processed: a pause for a full volume cannot be stored (src/resources/storage-guard.ts).
 */
export function toJobResource(
  job: JobRecord,
  chunks: readonly ChunkState[],
  now: number,
  storageWaiting: JobWaiting | null = null,
): JobResource {
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
    detected_language: detectedLanguage(chunks),
    error:
      job.errorCode === null
        ? null
        : { code: job.errorCode, message: job.errorMessage ?? defaultMessage(job.errorCode) },
    webhook: job.request.callback_url === null ? null : (job.webhook ?? WEBHOOK_NOT_YET),
    links: { self: `/v1/jobs/${job.id}`, transcript: `/v1/jobs/${job.id}/transcript` },
  };
}

/** The language the backend reported for the first chunk that has one (whisper detects it when none is asked for). */
export function detectedLanguage(chunks: readonly ChunkState[]): string | null {
  return chunks.find((c) => c.status === 'done' && typeof c.language === 'string')?.language ?? null;
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
  const until =
    held
      .map((c) => c.nextTryAt)
      .filter((t): t is string => t !== null)
      .sort()
      .at(-1) ?? null;
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
    waiting:
      (job.status === 'processing' ? storageWaiting : null) ??
      (held.length > 0 ? { reason: CIRCUIT_WAIT_REASON, until } : null),
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
