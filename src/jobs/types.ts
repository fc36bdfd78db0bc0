import type { StoredChunkPlan } from '../chunker/chunk-source.ts';
import type { ErrorCode } from '../errors.ts';
import type { ChunkResult, ProviderName } from '../transcribe/types.ts';

export const JOB_STATUSES = ['queued', 'processing', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const JOB_STAGES = ['validating', 'slicing', 'transcribing', 'stitching'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/** Queued or processing: the job still needs its files and may still change. Every other status is an end. */
export function isLive(status: JobStatus): boolean {
  return status === 'queued' || status === 'processing';
}

export type ChunkStatus = 'pending' | 'sending' | 'retrying' | 'done' | 'failed';

export interface AudioInfo {
  filename: string;
  size_bytes: number;
  duration_s: number;
  format: string;
  codec: string;
  sample_rate: number;
  channels: number;
  /** The demuxer forced on every ffmpeg call after the probe (not shown to clients). */
  demuxer: string;
}

export interface JobRequest {
  language: string | null;
  prompt: string | null;
  model: string;
  metadata: Record<string, unknown> | null;
  callback_url: string | null;
  max_cost_usd: number | null;
  /** 'sequential' chains each chunk's prompt to the previous chunk's text; absent (older jobs) means 'none'. */
  context?: 'none' | 'sequential';
  /** 'translate': into English (POST /v1/audio/translations); absent (older jobs) means 'transcribe'. */
  task?: 'transcribe' | 'translate';
  /** Sampling temperature (0..1) for engines that take one; absent or null: the engine's default. */
  temperature?: number | null;
  /** Word times asked for (timestamp_granularities[]=word); absent means not asked. */
  word_timestamps?: boolean;
}

export interface CostEstimate {
  cost_usd: number;
  provider: ProviderName;
  model: string;
}

/**
 * Delivery of the job's end to its callback_url. 'pending' until delivered or given up; attempts counts the POSTs
 * made (and the refusals of a non-public address, which make no request).
 */
export interface WebhookState {
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
}

export interface JobRecord {
  id: string;
  owner: string | null;
  status: JobStatus;
  stage: JobStage | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  audio: AudioInfo;
  request: JobRequest;
  estimate: CostEstimate;
  /** Planned from the duration until slicing has finished, then the real count. */
  chunksTotal: number;
  slicingDone: boolean;
  /** Highest percent ever reported, so it never goes down. */
  percent: number;
  transcribingStartedAt: string | null;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
  idempotencyKey: string | null;
  /** The name of the API key that created the job (never the key); null in open mode and for older jobs. */
  keyName?: string | null;
  /** Null until the job has ended (or when it has no callback_url). */
  webhook?: WebhookState | null;
  /** How the chunks are cut (stream copy or re-encode, byte cap, overlap, and why), set when slicing starts; null before. */
  chunkPlan?: StoredChunkPlan | null;
}

export interface ChunkRecord {
  jobId: string;
  index: number;
  startS: number;
  durationS: number;
  status: ChunkStatus;
  attempts: number;
  nextTryAt: string | null;
  errorCode: ErrorCode | null;
  errorMessage: string | null;
  result: ChunkResult | null;
}

/**
 * A chunk row without its transcription result: what progress reporting needs, without parsing the result JSON;
 * with the language its result reports (null before it has one, or when the model reports none).
 */
export type ChunkState = Omit<ChunkRecord, 'result'> & { language?: string | null };
