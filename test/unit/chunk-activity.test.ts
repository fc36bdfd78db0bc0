import { describe, expect, it } from 'vitest';
import { chunkActivity, CIRCUIT_WAIT_REASON, MAX_RETRYING_SHOWN } from '../../src/http/job-resource.ts';
import type { ChunkRecord, ChunkStatus } from '../../src/jobs/types.ts';

function chunk(index: number, status: ChunkStatus, patch: Partial<ChunkRecord> = {}): ChunkRecord {
  return {
    jobId: 'job_a',
    index,
    startS: index * 10,
    durationS: 10,
    status,
    attempts: 0,
    nextTryAt: null,
    errorCode: null,
    errorMessage: null,
    result: null,
    ...patch,
  };
}

describe('chunk activity of the job resource', () => {
  it('counts pending (rows not cut yet included) and sending chunks, and lists the retrying ones', () => {
    const chunks = [
      chunk(0, 'done', { attempts: 1 }),
      chunk(1, 'sending', { attempts: 1 }),
      chunk(2, 'retrying', { attempts: 2, nextTryAt: '2025-01-01T00:00:05.000Z', errorMessage: 'HTTP 503' }),
      chunk(3, 'pending'),
    ];
    expect(chunkActivity({ status: 'processing', chunksTotal: 6 }, chunks)).toEqual({
      chunks_pending: 3,
      chunks_sending: 1,
      retrying: [{ chunk: 2, attempts: 2, next_try_at: '2025-01-01T00:00:05.000Z', reason: 'HTTP 503' }],
      waiting: null,
    });
  });

  it('says the job waits for the provider while chunks are held by its open circuit, until the latest probe time', () => {
    const held = (i: number, at: string) =>
      chunk(i, 'retrying', {
        attempts: 3,
        nextTryAt: at,
        errorCode: 'PROVIDER_UNAVAILABLE',
        errorMessage: CIRCUIT_WAIT_REASON,
      });
    const chunks = [held(0, '2025-01-01T00:00:30.000Z'), held(1, '2025-01-01T00:00:31.000Z'), chunk(2, 'pending')];
    expect(chunkActivity({ status: 'processing', chunksTotal: 3 }, chunks).waiting).toEqual({
      reason: 'provider_circuit_open',
      until: '2025-01-01T00:00:31.000Z',
    });
  });

  it('shows at most MAX_RETRYING_SHOWN retrying chunks, and nothing for an ended job', () => {
    const many = Array.from({ length: MAX_RETRYING_SHOWN + 5 }, (_, i) => chunk(i, 'retrying', { attempts: 2 }));
    expect(chunkActivity({ status: 'processing', chunksTotal: many.length }, many).retrying).toHaveLength(
      MAX_RETRYING_SHOWN,
    );
    expect(chunkActivity({ status: 'failed', chunksTotal: many.length }, many)).toEqual({
      chunks_pending: 0,
      chunks_sending: 0,
      retrying: [],
      waiting: null,
    });
  });
});
