import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import type { JobStatus } from '../../src/jobs/types.ts';
import { createCleanupManager, type CleanupConfig, type CleanupDeps } from '../../src/retention/cleanup-manager.ts';
import { createJobDirs, type JobDirs } from '../../src/resources/job-dirs.ts';
import { jobRecord } from '../support/job-record.ts';

const HOUR = 3_600_000;
const logger = pino({ level: 'silent' });
const config: CleanupConfig = { retentionMs: 168 * HOUR, uploadRetentionMs: 0, intervalMs: 60_000 };

describe('createCleanupManager', () => {
  let dataDir: string;
  let store: SqliteJobStore;
  let dirs: JobDirs;
  let now: Date;
  const clock = () => now;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-cleanup-'));
    store = new SqliteJobStore({ file: ':memory:' });
    dirs = createJobDirs({ dataDir, logger });
    now = new Date('2030-01-10T00:00:00.000Z');
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A job row plus its directory with a 1000-byte upload and one chunk file. */
  async function addJob(status: JobStatus, endedHoursAgo: number | null): Promise<string> {
    const id = newJobId();
    const completedAt = endedHoursAgo === null ? null : new Date(now.getTime() - endedHoursAgo * HOUR).toISOString();
    await store.insertJob(jobRecord(id, status, completedAt));
    await addFiles(id);
    return id;
  }
  async function addFiles(id: string): Promise<void> {
    await mkdir(dirs.chunksDir(id, 1), { recursive: true });
    await writeFile(dirs.uploadPath(id), Buffer.alloc(1000));
    await writeFile(path.join(dirs.chunksDir(id, 1), 'chunk-00000.mp3'), Buffer.alloc(10));
  }
  const manager = (over: Partial<CleanupConfig> = {}, deps: Partial<CleanupDeps> = {}) =>
    createCleanupManager({ store, dirs, logger, config: { ...config, ...over }, clock, ...deps });

  it('purges rows, transcripts and files of jobs ended longer ago than the retention, and nothing newer', async () => {
    const old = await addJob('completed', 169);
    const oldFailed = await addJob('failed', 200);
    const recent = await addJob('completed', 167);
    const report = await manager({ uploadRetentionMs: 1000 * HOUR }).sweep();
    expect(await store.getJob(old)).toBeNull();
    expect(await store.getJob(oldFailed)).toBeNull();
    expect(await store.getJob(recent)).not.toBeNull();
    expect(existsSync(dirs.jobDir(old))).toBe(false);
    expect(existsSync(dirs.uploadPath(recent))).toBe(true);
    expect(report).toMatchObject({ purgedJobs: 2, removedDirs: 2, freedBytes: 2020, orphans: 0 });
  });

  it('purges in batches until every expired row is gone', async () => {
    for (let i = 0; i < 5; i++) await addJob('completed', 300);
    const report = await manager({}, { batchSize: 2 }).sweep();
    expect(report.purgedJobs).toBe(5);
    expect((await store.jobIds()).size).toBe(0);
  });

  it('keeps an ended job upload for UPLOAD_RETENTION_HOURS, removes its chunks, then the whole directory', async () => {
    const id = await addJob('completed', 1);
    const cleanup = manager({ uploadRetentionMs: 2 * HOUR });
    await cleanup.sweep();
    expect(existsSync(dirs.uploadPath(id))).toBe(true);
    expect(existsSync(dirs.chunksDir(id, 1))).toBe(false);
    now = new Date(now.getTime() + HOUR);
    await cleanup.sweep();
    expect(existsSync(dirs.jobDir(id))).toBe(false);
    expect(await store.getJob(id)).not.toBeNull();
  });

  it('removes retained uploads of ended jobs in an emergency and leaves live jobs and streaming uploads alone', async () => {
    const ended = await addJob('completed', 0);
    const queued = await addJob('queued', null);
    const processing = await addJob('processing', null);
    const streaming = newJobId();
    await dirs.create(streaming);
    await writeFile(dirs.uploadPath(streaming), Buffer.alloc(500));
    const cleanup = manager({ uploadRetentionMs: 24 * HOUR });

    expect((await cleanup.sweep()).removedDirs).toBe(0);
    const report = await cleanup.emergency();
    expect(report).toMatchObject({ emergency: true, removedDirs: 1, freedBytes: 1000, purgedJobs: 0 });
    expect(existsSync(dirs.jobDir(ended))).toBe(false);
    for (const live of [queued, processing]) {
      expect(await readdir(dirs.jobDir(live), { recursive: true })).toEqual(
        expect.arrayContaining(['upload', path.join('chunks-1', 'chunk-00000.mp3')]),
      );
    }
    expect(existsSync(dirs.uploadPath(streaming))).toBe(true);
    expect(await store.getJob(ended)).not.toBeNull();
  });

  it('removes a directory no row and no upload in this process owns', async () => {
    const orphan = newJobId();
    await addFiles(orphan);
    const report = await manager().sweep();
    expect(report.orphans).toBe(1);
    expect(existsSync(dirs.jobDir(orphan))).toBe(false);
  });

  it('releases an ended job files at once without upload retention, and never a live job', async () => {
    const ended = await addJob('failed', 0);
    const live = await addJob('processing', null);
    await manager().releaseUpload(ended);
    await manager().releaseUpload(live);
    expect(existsSync(dirs.jobDir(ended))).toBe(false);
    expect(existsSync(dirs.uploadPath(live))).toBe(true);
  });

  it('leaves an ended job upload to the sweep when uploads are retained', async () => {
    const ended = await addJob('completed', 0);
    await manager({ uploadRetentionMs: HOUR }).releaseUpload(ended);
    expect(existsSync(dirs.uploadPath(ended))).toBe(true);
  });

  it('runs every interval, never two passes at once, and stops waiting for the pass in progress', async () => {
    vi.useFakeTimers();
    let active = 0;
    let maxActive = 0;
    let passes = 0;
    let release: (() => void) | null = null;
    const slowDirs = {
      ...dirs,
      async list() {
        active += 1;
        passes += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((r) => (release = r));
        active -= 1;
        return [];
      },
    };
    const cleanup = manager({ intervalMs: 1000 }, { dirs: slowDirs });
    cleanup.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(passes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(passes).toBe(1);
    // The first pass hangs: however long that takes, no second one starts behind it.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toBe(1);
    release!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toBe(2);
    const emergency = cleanup.emergency();
    expect(cleanup.emergency()).toBe(emergency);
    const stopped = cleanup.stop();
    let stoppedYet = false;
    void stopped.then(() => (stoppedYet = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stoppedYet).toBe(false);
    release!();
    await stopped;
    await expect(emergency).resolves.toMatchObject({ emergency: true, removedDirs: 0 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(passes).toBe(2);
    expect(maxActive).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps passing after a failed pass and reports the failure to the caller', async () => {
    let calls = 0;
    const flaky = { ...dirs, list: async () => (++calls === 1 ? Promise.reject(new Error('EIO')) : []) };
    const cleanup = manager({}, { dirs: flaky });
    await expect(cleanup.sweep()).rejects.toThrow('EIO');
    await expect(cleanup.sweep()).resolves.toMatchObject({ removedDirs: 0 });
  });
});
