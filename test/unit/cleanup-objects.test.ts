import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import type { JobStore } from '../../src/jobs/job-store.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import type { JobStatus } from '../../src/jobs/types.ts';
import {
  createCleanupManager,
  ORPHAN_OBJECT_GRACE_MS,
  type CleanupConfig,
} from '../../src/retention/cleanup-manager.ts';
import { createJobDirs, type JobDirs } from '../../src/resources/job-dirs.ts';
import type { StoredUpload, UploadStore } from '../../src/storage/upload-store.ts';
import { jobRecord } from '../support/job-record.ts';

const HOUR = 3_600_000;
const logger = pino({ level: 'silent' });

/** The bucket as the cleanup sees it: uploads by job id, with their modification time; `down` makes deletes fail. */
function fakeBucket() {
  const objects = new Map<string, StoredUpload>();
  const bucket = {
    objects,
    down: false,
    store: {
      driver: 's3',
      list: async () => [...objects.values()],
      remove: async (jobId: string) => {
        if (bucket.down) throw new Error('object store down');
        objects.delete(jobId);
      },
    } satisfies Pick<UploadStore, 'driver' | 'list' | 'remove'>,
  };
  return bucket;
}

describe('cleanup of the object store (STORAGE_URL)', () => {
  let dataDir: string;
  let store: JobStore;
  let dirs: JobDirs;
  let bucket: ReturnType<typeof fakeBucket>;
  let now: Date;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-cleanup-objects-'));
    store = new SqliteJobStore({ file: ':memory:' });
    dirs = createJobDirs({ dataDir, logger });
    bucket = fakeBucket();
    now = new Date('2030-01-10T00:00:00.000Z');
  });
  afterEach(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const manager = (over: Partial<CleanupConfig> = {}) =>
    createCleanupManager({
      store,
      dirs,
      uploads: bucket.store,
      logger,
      config: { retentionMs: 168 * HOUR, uploadRetentionMs: 0, intervalMs: 60_000, ...over },
      clock: () => now,
    });

  /** A job row (or none) with its object, whose put surely ended `completeBy` (null: the store gives no date). */
  async function addJob(
    status: JobStatus | null,
    endedHoursAgo: number | null,
    completeBy: Date | null = now,
  ): Promise<string> {
    const id = newJobId();
    if (status !== null) {
      const endedAt = endedHoursAgo === null ? null : new Date(now.getTime() - endedHoursAgo * HOUR).toISOString();
      await store.insertJob(jobRecord(id, status, endedAt));
    }
    bucket.objects.set(id, { jobId: id, bytes: 100, completeByMs: completeBy?.getTime() ?? null });
    return id;
  }
  const kept = () => [...bucket.objects.keys()].sort();

  it('deletes the objects of purged jobs and of ended jobs past upload retention; keeps retained and live ones', async () => {
    const purged = await addJob('completed', 169);
    const pastUploadRetention = await addJob('failed', 3);
    const retained = await addJob('completed', 1);
    const live = [await addJob('queued', null), await addJob('processing', null)];
    const report = await manager({ uploadRetentionMs: 2 * HOUR }).sweep();
    expect(await store.getJob(purged)).toBeNull();
    expect(bucket.objects.has(purged)).toBe(false);
    expect(bucket.objects.has(pastUploadRetention)).toBe(false);
    expect(kept()).toEqual([retained, ...live].sort());
    expect(report).toMatchObject({ purgedJobs: 1, removedObjects: 2, orphans: 0 });
  });

  it("an ended job's local copy is scratch: the sweep removes it while the bucket keeps the retained upload", async () => {
    const retained = await addJob('completed', 1);
    await mkdir(dirs.chunksDir(retained, 1), { recursive: true });
    await writeFile(dirs.uploadPath(retained), 'audio');
    const report = await manager({ uploadRetentionMs: 2 * HOUR }).sweep();
    expect(existsSync(dirs.jobDir(retained))).toBe(false);
    expect(kept()).toEqual([retained]);
    expect(report).toMatchObject({ removedDirs: 1, removedObjects: 0, freedBytes: 5 });
  });

  it('an object without a row is deleted once this process has listed it so for the grace, not before', async () => {
    const cleanup = manager();
    // Objects the store gives no date: only this process's own listings can tell how long they have been there.
    const left = await addJob(null, null, null);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 0, orphans: 0 });
    now = new Date(now.getTime() + ORPHAN_OBJECT_GRACE_MS - 1);
    const arriving = await addJob(null, null, null);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 0, orphans: 0 });
    now = new Date(now.getTime() + 1);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 1, orphans: 1 });
    expect(kept()).toEqual([arriving]);
    expect(left).not.toBe(arriving);
  });

  it('an object whose put surely ended the grace ago goes at the first listing: a process restarted within the grace', async () => {
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const left = await addJob(null, null, ago(ORPHAN_OBJECT_GRACE_MS));
    const recent = await addJob(null, null, ago(ORPHAN_OBJECT_GRACE_MS - 1));
    const undated = await addJob(null, null, null);
    const withRow = await addJob('queued', null, ago(10 * ORPHAN_OBJECT_GRACE_MS));
    // Each pass a new process: none of them has listed an object before.
    expect(await manager().sweep()).toMatchObject({ removedObjects: 1, orphans: 1 });
    expect(kept()).toEqual([recent, undated, withRow].sort());
    expect(left).not.toBe(recent);
    now = new Date(now.getTime() + 1);
    expect(await manager().sweep()).toMatchObject({ removedObjects: 1, orphans: 1 });
    expect(kept()).toEqual([undated, withRow].sort());
  });

  it('an object whose row was written meanwhile is kept, and its grace starts over if the row goes', async () => {
    const cleanup = manager({ orphanGraceMs: 1_000 });
    const id = await addJob(null, null, null);
    await cleanup.sweep();
    await store.insertJob(jobRecord(id, 'queued', null));
    now = new Date(now.getTime() + 5_000);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 0 });
    // A row that goes while its object stays (a delete the store took and the bucket missed): a new wait.
    await store.deleteJob(id);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 0 });
    now = new Date(now.getTime() + 1_000);
    expect(await cleanup.sweep()).toMatchObject({ removedObjects: 1, orphans: 1 });
    expect(kept()).toEqual([]);
  });

  it('the emergency cleanup deletes retained uploads in the bucket too, never a live job', async () => {
    const retained = await addJob('completed', 0.1);
    const live = await addJob('processing', null);
    const cleanup = manager({ uploadRetentionMs: 24 * HOUR });
    expect((await cleanup.sweep()).removedObjects).toBe(0);
    expect((await cleanup.emergency()).removedObjects).toBe(1);
    expect(kept()).toEqual([live]);
    expect(bucket.objects.has(retained)).toBe(false);
  });

  it('at a job end the local copy goes; the object goes too unless uploads are retained, and a store that is down only delays it', async () => {
    const local = async (id: string) => {
      await mkdir(dirs.chunksDir(id, 1), { recursive: true });
      await writeFile(dirs.uploadPath(id), 'audio');
    };
    const retained = await addJob('completed', 0);
    await local(retained);
    await manager({ uploadRetentionMs: HOUR }).releaseUpload(retained);
    expect(existsSync(dirs.jobDir(retained))).toBe(false);
    expect(bucket.objects.has(retained)).toBe(true);

    const notRetained = await addJob('completed', 0);
    await local(notRetained);
    bucket.down = true;
    await manager().releaseUpload(notRetained);
    expect(existsSync(dirs.jobDir(notRetained))).toBe(false);
    expect(bucket.objects.has(notRetained)).toBe(true);
    bucket.down = false;
    // The next pass finds an ended job that keeps no upload.
    await manager().sweep();
    expect(bucket.objects.has(notRetained)).toBe(false);
  });
});
