import { describe, expect, it } from 'vitest';
import { toJobResource } from '../../src/http/job-resource.ts';
import { computeProgress, MAX_RUNNING_PERCENT } from '../../src/jobs/progress.ts';
import type { ProgressInput } from '../../src/jobs/progress.ts';
import type { ChunkRecord, ChunkStatus, JobRecord } from '../../src/jobs/types.ts';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');

function input(statuses: ChunkStatus[], over: Partial<ProgressInput> = {}): ProgressInput {
  return {
    status: 'processing',
    durationS: 100,
    chunksTotal: statuses.length,
    chunks: statuses.map((status) => ({ status, durationS: 25 })),
    previousPercent: 0,
    transcribingStartedAt: T0,
    now: T0 + 60_000,
    ...over,
  };
}

describe('computeProgress', () => {
  it('counts chunks by status and weights percent by audio seconds', () => {
    const p = computeProgress(input(['done', 'failed', 'retrying', 'pending']));
    expect(p).toMatchObject({
      chunks_total: 4,
      chunks_done: 1,
      chunks_failed: 1,
      chunks_retrying: 1,
      percent: 50,
      audio_s_done: 25,
    });
  });

  it('has no eta until a chunk has finished, then extrapolates the elapsed time', () => {
    expect(computeProgress(input(['sending', 'pending', 'pending', 'pending'])).eta_s).toBeNull();
    expect(computeProgress(input(['done', 'pending'], { transcribingStartedAt: null })).eta_s).toBeNull();
    // 60 s for 25 of 100 audio seconds: 180 s for the other 75.
    expect(computeProgress(input(['done', 'pending', 'pending', 'pending'])).eta_s).toBe(180);
  });

  it('never lowers percent below what was reported before', () => {
    const p = computeProgress(input(['done', 'pending', 'pending', 'pending'], { previousPercent: 40 }));
    expect(p.percent).toBe(40);
    let previous = 0;
    const seq: ChunkStatus[][] = [
      ['sending', 'pending'],
      ['done', 'pending'],
      ['done', 'retrying'],
      ['done', 'done'],
    ];
    for (const statuses of seq) {
      const { percent } = computeProgress(input(statuses, { previousPercent: previous, durationS: 50 }));
      expect(percent).toBeGreaterThanOrEqual(previous);
      previous = percent;
    }
    expect(previous).toBe(MAX_RUNNING_PERCENT);
  });

  it('reports 100 only for a completed job', () => {
    const all = input(['done', 'done', 'done', 'done']);
    expect(computeProgress(all).percent).toBe(MAX_RUNNING_PERCENT);
    expect(computeProgress({ ...all, status: 'failed', previousPercent: 100 }).percent).toBeLessThan(100);
    expect(computeProgress({ ...all, status: 'completed' })).toMatchObject({ percent: 100, eta_s: 0 });
  });

  it('reports eta 0 for terminal states', () => {
    expect(computeProgress(input(['pending'], { status: 'cancelled' })).eta_s).toBe(0);
    expect(computeProgress(input(['failed'], { status: 'failed' })).eta_s).toBe(0);
  });

  it('measures against the chunks real length when overlapping chunks add up to more than the audio', () => {
    const chunks = [
      { status: 'done' as const, durationS: 51 },
      { status: 'pending' as const, durationS: 51 },
    ];
    const p = computeProgress(input([], { chunks, chunksTotal: 2 }));
    expect(p.percent).toBe(50);
    expect(p.audio_s_done).toBe(50);
  });

  it('uses the planned chunk count while fewer chunk rows exist', () => {
    const p = computeProgress(input(['done'], { chunksTotal: 4 }));
    expect(p.chunks_total).toBe(4);
    expect(p.percent).toBe(25);
  });
});

const job: JobRecord = {
  id: 'job_abc',
  owner: 'key-1',
  status: 'processing',
  stage: 'transcribing',
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:01:00.000Z',
  completedAt: null,
  audio: {
    filename: 'talk.mp3',
    size_bytes: 1234,
    duration_s: 100,
    format: 'mp3',
    codec: 'mp3',
    sample_rate: 44100,
    channels: 2,
    demuxer: 'mp3',
  },
  request: { language: null, prompt: null, model: 'whisper-1', metadata: null, callback_url: null, max_cost_usd: null },
  estimate: { cost_usd: 0.01, provider: 'openai', model: 'whisper-1' },
  chunksTotal: 2,
  slicingDone: true,
  percent: 10,
  transcribingStartedAt: '2025-01-01T00:00:00.000Z',
  errorCode: null,
  errorMessage: null,
  idempotencyKey: null,
};

function chunkRecord(index: number, status: ChunkStatus): ChunkRecord {
  return {
    jobId: job.id,
    index,
    startS: index * 50,
    durationS: 50,
    status,
    attempts: 1,
    nextTryAt: null,
    errorCode: null,
    errorMessage: null,
    result: null,
  };
}

describe('toJobResource', () => {
  it('produces exactly the job resource of the API contract', () => {
    const r = toJobResource(job, [chunkRecord(0, 'done'), chunkRecord(1, 'sending')], T0 + 30_000);
    expect(r).toEqual({
      id: 'job_abc',
      status: 'processing',
      stage: 'transcribing',
      created_at: '2025-01-01T00:00:00.000Z',
      updated_at: '2025-01-01T00:01:00.000Z',
      completed_at: null,
      key_name: null,
      audio: {
        filename: 'talk.mp3',
        size_bytes: 1234,
        duration_s: 100,
        format: 'mp3',
        codec: 'mp3',
        sample_rate: 44100,
        channels: 2,
      },
      progress: {
        chunks_total: 2,
        chunks_done: 1,
        chunks_failed: 0,
        chunks_retrying: 0,
        percent: 50,
        eta_s: 30,
        audio_s_done: 50,
        chunks_pending: 0,
        chunks_sending: 1,
        retrying: [],
        waiting: null,
      },
      estimate: { cost_usd: 0.01, provider: 'openai', model: 'whisper-1' },
      detected_language: null,
      error: null,
      webhook: null,
      links: { self: '/v1/jobs/job_abc', transcript: '/v1/jobs/job_abc/transcript' },
    });
    expect(JSON.stringify(r)).not.toContain('demuxer');
    expect(JSON.stringify(r)).not.toContain('key-1');
  });

  it('carries the error code and message of a failed job', () => {
    const failed = {
      ...job,
      status: 'failed' as const,
      stage: null,
      errorCode: 'PROVIDER_AUTH' as const,
      errorMessage: 'Check the key.',
    };
    const r = toJobResource(failed, [], T0);
    expect(r.error).toEqual({ code: 'PROVIDER_AUTH', message: 'Check the key.' });
    expect(r.stage).toBeNull();
    expect(r.progress.eta_s).toBe(0);
    expect(r.progress.percent).toBe(10);
  });
});
