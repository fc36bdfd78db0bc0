import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import { JobStore } from '../../src/jobs/store.ts';
import { jobRecord } from '../support/job-record.ts';

describe('JobStore.pollView: the poll answer kept between writes', () => {
  let dir: string;
  let store: JobStore;
  let other: JobStore;
  const id = newJobId();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-poll-view-'));
    const file = path.join(dir, 'jobs.sqlite');
    store = new JobStore({ file, shared: true });
    // A second connection to the same file: another process in scale-out mode.
    other = new JobStore({ file });
    store.insertJob(jobRecord(id, 'processing', null, 'alice'));
    store.upsertChunk(id, 0, 0, 1);
  });
  afterEach(async () => {
    store.close();
    other.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the same rows again while nothing is written', () => {
    const first = store.pollView(id, 'alice');
    expect(first?.job.status).toBe('processing');
    expect(first?.chunks.map((c) => c.status)).toEqual(['pending']);
    expect(store.pollView(id, 'alice')).toBe(first);
  });

  it('reads again after any write through the same connection', () => {
    const first = store.pollView(id, 'alice');
    store.updateChunk(id, 0, { status: 'sending', attempts: 1 });
    const second = store.pollView(id, 'alice');
    expect(second).not.toBe(first);
    expect(second?.chunks[0]).toMatchObject({ status: 'sending', attempts: 1 });
    store.raisePercent(id, 40);
    expect(store.pollView(id, 'alice')?.job.percent).toBe(40);
    store.updateJob(id, { status: 'completed', completedAt: '2030-01-01T00:01:00.000Z' });
    expect(store.pollView(id, 'alice')?.job.status).toBe('completed');
    store.deleteJob(id);
    expect(store.pollView(id, 'alice')).toBeNull();
  });

  it('reads again after a write by another connection to the file', () => {
    const first = store.pollView(id, 'alice');
    other.updateJob(id, { status: 'cancelled' });
    expect(store.pollView(id, 'alice')?.job.status).toBe('cancelled');
    expect(store.pollView(id, 'alice')).not.toBe(first);
    other.deleteJob(id);
    expect(store.pollView(id, 'alice')).toBeNull();
  });

  it('trusts its own write count when it is the only writer', () => {
    const alone = new JobStore({ file: path.join(dir, 'jobs.sqlite') });
    try {
      const first = alone.pollView(id, 'alice');
      alone.updateJob(id, { status: 'failed' });
      expect(alone.pollView(id, 'alice')?.job.status).toBe('failed');
      // Not shared: a write it did not make goes unseen until its own next write (the service never runs so).
      other.updateJob(id, { status: 'cancelled' });
      expect(alone.pollView(id, 'alice')?.job.status).toBe('failed');
      expect(first?.job.status).toBe('processing');
    } finally {
      alone.close();
    }
  });

  it("hides another owner's job, cached or not, and knows no unknown id", () => {
    expect(store.pollView(id, 'bob')).toBeNull();
    expect(store.pollView(id, 'alice')).not.toBeNull();
    expect(store.pollView(id, 'bob')).toBeNull();
    expect(store.pollView(newJobId(), 'alice')).toBeNull();
  });
});
