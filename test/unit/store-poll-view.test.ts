import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { jobRecord } from '../support/job-record.ts';

describe('JobStore.pollView: the poll answer kept between writes', () => {
  let dir: string;
  let store: SqliteJobStore;
  let other: SqliteJobStore;
  const id = newJobId();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-poll-view-'));
    const file = path.join(dir, 'jobs.sqlite');
    store = new SqliteJobStore({ file, shared: true });
    // A second connection to the same file: another process in scale-out mode.
    other = new SqliteJobStore({ file });
    await store.insertJob(jobRecord(id, 'processing', null, 'alice'));
    await store.upsertChunk(id, 0, 0, 1);
  });
  afterEach(async () => {
    await store.close();
    await other.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the same rows again while nothing is written', async () => {
    const first = await store.pollView(id, 'alice');
    expect(first?.job.status).toBe('processing');
    expect(first?.chunks.map((c) => c.status)).toEqual(['pending']);
    expect(await store.pollView(id, 'alice')).toBe(first);
  });

  it('reads again after any write through the same connection', async () => {
    const first = await store.pollView(id, 'alice');
    await store.updateChunk(id, 0, { status: 'sending', attempts: 1 });
    const second = await store.pollView(id, 'alice');
    expect(second).not.toBe(first);
    expect(second?.chunks[0]).toMatchObject({ status: 'sending', attempts: 1 });
    await store.raisePercent(id, 40);
    expect((await store.pollView(id, 'alice'))?.job.percent).toBe(40);
    await store.updateJob(id, { status: 'completed', completedAt: '2030-01-01T00:01:00.000Z' });
    expect((await store.pollView(id, 'alice'))?.job.status).toBe('completed');
    await store.deleteJob(id);
    expect(await store.pollView(id, 'alice')).toBeNull();
  });

  it('reads again after a write by another connection to the file', async () => {
    const first = await store.pollView(id, 'alice');
    await other.updateJob(id, { status: 'cancelled' });
    expect((await store.pollView(id, 'alice'))?.job.status).toBe('cancelled');
    expect(await store.pollView(id, 'alice')).not.toBe(first);
    await other.deleteJob(id);
    expect(await store.pollView(id, 'alice')).toBeNull();
  });

  it('trusts its own write count when it is the only writer', async () => {
    const alone = new SqliteJobStore({ file: path.join(dir, 'jobs.sqlite') });
    try {
      const first = await alone.pollView(id, 'alice');
      await alone.updateJob(id, { status: 'failed' });
      expect((await alone.pollView(id, 'alice'))?.job.status).toBe('failed');
      // Not shared: a write it did not make goes unseen until its own next write (the service never runs so).
      await other.updateJob(id, { status: 'cancelled' });
      expect((await alone.pollView(id, 'alice'))?.job.status).toBe('failed');
      expect(first?.job.status).toBe('processing');
    } finally {
      await alone.close();
    }
  });

  it("hides another owner's job, cached or not, and knows no unknown id", async () => {
    expect(await store.pollView(id, 'bob')).toBeNull();
    expect(await store.pollView(id, 'alice')).not.toBeNull();
    expect(await store.pollView(id, 'bob')).toBeNull();
    expect(await store.pollView(newJobId(), 'alice')).toBeNull();
  });
});
