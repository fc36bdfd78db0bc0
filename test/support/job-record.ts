import type { JobRecord, JobStatus } from '../../src/jobs/types.ts';

/** A stored job of a 1 s WAV, for tests that need rows rather than a pipeline run. */
export function jobRecord(
  id: string,
  status: JobStatus,
  completedAt: string | null,
  owner: string | null = null,
): JobRecord {
  return {
    id,
    owner,
    status,
    stage: null,
    createdAt: '2030-01-01T00:00:00.000Z',
    updatedAt: '2030-01-01T00:00:00.000Z',
    completedAt,
    audio: {
      filename: 'a.wav',
      size_bytes: 10,
      duration_s: 1,
      format: 'wav',
      codec: 'pcm_s16le',
      sample_rate: 16000,
      channels: 1,
      demuxer: 'wav',
    },
    request: {
      language: null,
      prompt: null,
      model: 'whisper-1',
      metadata: null,
      callback_url: null,
      max_cost_usd: null,
    },
    estimate: { cost_usd: 0, provider: 'openai', model: 'whisper-1' },
    chunksTotal: 1,
    slicingDone: false,
    percent: 0,
    transcribingStartedAt: null,
    errorCode: null,
    errorMessage: null,
    idempotencyKey: null,
  };
}
