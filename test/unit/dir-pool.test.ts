import { stat } from 'node:fs/promises';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import { newJobId } from '../../src/jobs/ids.ts';
import { createDirPool, type DirPool } from '../../src/resources/dir-pool.ts';
import { createJobDirs, type JobDirs } from '../../src/resources/job-dirs.ts';
import { removeDir, tempDataDir } from '../helper.ts';

const logger = pino({ level: 'silent' });

async function busy(
  promise: Promise<unknown> | (() => unknown),
): Promise<{ code: string; retryAfterS?: number; details?: Record<string, unknown> }> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    if (!isAppError(err)) throw err;
    return {
      code: err.code,
      ...(err.retryAfterS === undefined ? {} : { retryAfterS: err.retryAfterS }),
      ...(err.details ? { details: err.details } : {}),
    };
  }
  throw new Error('expected a refusal');
}

describe('job directory pool', () => {
  let dataDir: string;
  let dirs: JobDirs;
  let pool: DirPool;
  beforeEach(async () => {
    dataDir = await tempDataDir();
    dirs = createJobDirs({ dataDir, logger });
    pool = createDirPool({ dirs, limits: { maxLeases: 2, maxBytes: 1000, retryAfterS: 7 }, logger });
  });
  afterEach(() => removeDir(dataDir));

  it('creates the directory of a leased job and counts the lease and its bytes', async () => {
    const id = newJobId();
    const lease = await pool.acquire(id, 300);
    expect((await stat(dirs.jobDir(id))).isDirectory()).toBe(true);
    expect(pool.holds(id)).toBe(true);
    expect(lease.bytes).toBe(300);
    expect(pool.usage()).toEqual({ leases: 1, bytes: 300 });
  });

  it('releases a lease exactly once, by the lease or by the job id', async () => {
    const a = newJobId();
    const b = newJobId();
    const leaseA = await pool.acquire(a, 100);
    await pool.acquire(b, 200);
    expect(leaseA.release()).toBe(true);
    expect(leaseA.release()).toBe(false);
    expect(pool.release(a)).toBe(false);
    expect(pool.usage()).toEqual({ leases: 1, bytes: 200 });
    expect(pool.release(b)).toBe(true);
    expect(pool.release(b)).toBe(false);
    expect(pool.usage()).toEqual({ leases: 0, bytes: 0 });
  });

  it('refuses a lease past the lease bound with SERVER_BUSY and Retry-After, creating nothing', async () => {
    await pool.acquire(newJobId(), 0);
    await pool.acquire(newJobId(), 0);
    const third = newJobId();
    expect(await busy(pool.acquire(third, 0))).toEqual({
      code: 'SERVER_BUSY',
      retryAfterS: 7,
      details: { resource: 'job_dirs_leases', leases: 2, bytes: 0 },
    });
    expect(await dirs.list()).not.toContain(third);
    expect(pool.usage().leases).toBe(2);
  });

  it('refuses a lease whose declared bytes would pass the byte bound, and takes it once bytes are released', async () => {
    const first = await pool.acquire(newJobId(), 700);
    const id = newJobId();
    expect((await busy(pool.acquire(id, 301))).details).toMatchObject({ resource: 'job_dirs_bytes' });
    expect(await dirs.list()).not.toContain(id);
    first.release();
    await pool.acquire(id, 301);
    expect(pool.usage()).toEqual({ leases: 1, bytes: 301 });
  });

  it('grows an upload of unknown length until the byte bound, then refuses without changing its reservation', async () => {
    const other = await pool.acquire(newJobId(), 600);
    const streaming = await pool.acquire(newJobId(), null);
    streaming.grow(250);
    streaming.grow(100);
    expect(streaming.bytes).toBe(250);
    expect((await busy(() => streaming.grow(401))).code).toBe('SERVER_BUSY');
    expect(streaming.bytes).toBe(250);
    expect(pool.usage().bytes).toBe(850);
    streaming.settle(240);
    expect(pool.usage().bytes).toBe(840);
    other.release();
    streaming.grow(1000);
    expect(pool.usage()).toEqual({ leases: 1, bytes: 1000 });
  });

  it('a released lease no longer moves the byte count', async () => {
    const lease = await pool.acquire(newJobId(), 100);
    lease.release();
    lease.grow(500);
    lease.settle(50);
    expect(pool.usage()).toEqual({ leases: 0, bytes: 0 });
  });

  it('crash recovery: adopts accepted jobs past the bounds, once each, and releases them once', async () => {
    const resumed = [newJobId(), newJobId(), newJobId()];
    for (const id of resumed) pool.adopt(id, 600);
    const again = pool.adopt(resumed[0]!, 600);
    expect(pool.usage()).toEqual({ leases: 3, bytes: 1800 });
    // New uploads wait until the adopted jobs have ended.
    expect((await busy(pool.acquire(newJobId(), 0))).code).toBe('SERVER_BUSY');
    expect(pool.release(resumed[0]!)).toBe(true);
    expect(again.release()).toBe(false);
    expect(pool.release(resumed[1]!)).toBe(true);
    expect(pool.release(resumed[2]!)).toBe(true);
    expect(pool.usage()).toEqual({ leases: 0, bytes: 0 });
    await pool.acquire(newJobId(), 1000);
  });

  it('a lease released before the job was adopted again cannot release the new lease', async () => {
    const id = newJobId();
    const stale = await pool.acquire(id, 100);
    stale.release();
    pool.adopt(id, 100);
    expect(stale.release()).toBe(false);
    expect(pool.holds(id)).toBe(true);
    expect(pool.usage()).toEqual({ leases: 1, bytes: 100 });
  });

  it('returns the lease when its directory cannot be created', async () => {
    const failing = createDirPool({
      dirs: { create: () => Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' })) },
      limits: { maxLeases: 1, maxBytes: 10, retryAfterS: 1 },
      logger,
    });
    await expect(failing.acquire(newJobId(), 5)).rejects.toThrow('no space');
    expect(failing.usage()).toEqual({ leases: 0, bytes: 0 });
  });

  it('rejects limits that are not positive integers', () => {
    expect(() => createDirPool({ dirs, limits: { maxLeases: 0, maxBytes: 1, retryAfterS: 1 }, logger })).toThrow(
      TypeError,
    );
    expect(() =>
      createDirPool({ dirs, limits: { maxLeases: 1, maxBytes: Number.NaN, retryAfterS: 1 }, logger }),
    ).toThrow(TypeError);
  });
});
