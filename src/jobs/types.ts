import type { ErrorCode } from '../errors.ts';
import type { ChunkResult, ProviderName } from '../transcribe/types.ts';

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type JobStage = 'validating' | 'slicing' | 'transcribing' | 'stitching';
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
}

export interface CostEstimate {
  cost_usd: number;
  provider: ProviderName;
  model: string;
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
