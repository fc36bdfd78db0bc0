import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatSpeed, jobProgressLine, stageWords } from '../../src/cli/format.ts';
import { createProgressReporter } from '../../src/cli/progress-reporter.ts';
import type { JobResource } from '../../src/http/schemas.ts';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');

type Over = Partial<Omit<JobResource, 'progress'>> & { progress?: Partial<JobResource['progress']> };

function job(over: Over = {}): JobResource {
  const { progress, ...rest } = over;
  return {
    id: 'job_test',
    status: 'processing',
    stage: 'transcribing',
    created_at: new Date(T0).toISOString(),
    updated_at: new Date(T0).toISOString(),
    completed_at: null,
    key_name: null,
    audio: {
      filename: 'talk.wav',
      size_bytes: 1000,
      duration_s: 600,
      format: 'wav',
      codec: 'pcm_s16le',
      sample_rate: 16000,
      channels: 1,
    },
    estimate: { cost_usd: 0, provider: 'local', model: 'pocketsphinx' },
    error: null,
    webhook: null,
    links: { self: '/v1/jobs/job_test', transcript: '/v1/jobs/job_test/transcript' },
    ...rest,
    progress: {
      chunks_total: 1,
      chunks_done: 0,
      chunks_failed: 0,
      chunks_retrying: 0,
      percent: 0,
      eta_s: null,
      audio_s_done: 0,
      chunks_pending: 0,
      chunks_sending: 1,
      retrying: [],
      waiting: null,
      ...progress,
    },
  };
}

describe('stage in words', () => {
  it('names every status and stage as a person would', () => {
    expect(stageWords(job({ status: 'queued', stage: null }), T0)).toBe('queued, waiting for a worker');
    expect(stageWords(job({ stage: 'validating' }), T0)).toBe('checking the recording');
    expect(stageWords(job({ stage: 'slicing' }), T0)).toBe('cutting the recording into chunks');
    expect(stageWords(job({ stage: 'stitching' }), T0)).toBe('joining the chunks into one transcript');
    expect(stageWords(job({ status: 'completed', stage: null }), T0)).toBe('done');
    expect(stageWords(job({ status: 'failed', stage: null }), T0)).toBe('failed');
  });

  it('says what the chunks in flight do, and when a retry or a held engine comes back', () => {
    expect(stageWords(job({ progress: { chunks_sending: 2, chunks_pending: 3 } }), T0)).toBe(
      'transcribing (2 with the engine, 3 waiting)',
    );
    const retry = job({
      progress: {
        chunks_sending: 0,
        chunks_retrying: 1,
        retrying: [{ chunk: 4, attempts: 2, next_try_at: new Date(T0 + 12_000).toISOString(), reason: 'HTTP 500' }],
      },
    });
    expect(stageWords(retry, T0)).toBe('transcribing (1 retrying, next try in 12s)');
    const held = job({
      progress: {
        chunks_sending: 0,
        chunks_retrying: 3,
        waiting: { reason: 'provider_circuit_open', until: new Date(T0 + 90_000).toISOString() },
      },
    });
    expect(stageWords(held, T0)).toBe('transcribing (engine unavailable, paused in 1m 30s)');
  });
});

describe('plain progress lines', () => {
  it('carry audio done of the whole, the speed against real time, elapsed time and eta', () => {
    const line = jobProgressLine(
      job({ progress: { chunks_total: 4, chunks_done: 2, percent: 50, audio_s_done: 300, eta_s: 25 } }),
      {
        elapsedS: 65,
        speed: 12.04,
        nowMs: T0,
      },
    );
    expect(line).toBe(
      'job_test transcribing (1 with the engine): 2/4 chunks 50%, audio 5m 00s of 10m 00s, 12x real time, elapsed 1m 05s, eta 25s',
    );
    expect(formatSpeed(0.84)).toBe('0.8x real time');
  });

  function plainReporter(clock: { now: number }) {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const reporter = createProgressReporter({ stream: out, mode: 'plain', now: () => clock.now, heartbeatMs: 30_000 });
    return { reporter, lines: () => text.split('\n').filter(Boolean) };
  }

  it('during one long chunk, repeats the line at the heartbeat so a log shows the command is alive', () => {
    const clock = { now: T0 };
    const { reporter, lines } = plainReporter(clock);
    const busy = job();
    reporter.jobUpdate(busy);
    for (let s = 1; s < 30; s++) {
      clock.now = T0 + s * 1000;
      reporter.jobUpdate(busy);
    }
    expect(lines()).toHaveLength(1);
    clock.now = T0 + 30_000;
    reporter.jobUpdate(busy);
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toMatch(
      /^job_test transcribing \(1 with the engine\): 0\/1 chunks 0%, audio 0s of 10m 00s, elapsed 30s, eta unknown$/,
    );
  });

  it('measures speed from the first state it saw, not from work done before it started following', () => {
    const clock = { now: T0 };
    const { reporter, lines } = plainReporter(clock);
    // Attached to a job that already has 5 minutes of audio done.
    reporter.jobUpdate(job({ progress: { chunks_total: 10, chunks_done: 5, audio_s_done: 300 } }));
    clock.now = T0 + 20_000;
    reporter.jobUpdate(job({ progress: { chunks_total: 10, chunks_done: 6, audio_s_done: 360 } }));
    expect(lines()[0]).not.toMatch(/real time/);
    // 60 audio seconds in 20 wall seconds.
    expect(lines()[1]).toMatch(/audio 6m 00s of 10m 00s, 3\.0x real time, elapsed 20s/);
  });
});
