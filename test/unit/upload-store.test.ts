import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import { newJobId } from '../../src/jobs/ids.ts';
import { ObjectStoreError, type ObjectStoreFailure } from '../../src/storage/object-store-error.ts';
import type { ObjectStore, StoredObject } from '../../src/storage/object-store.ts';
import { createS3Uploads, type UploadCopies } from '../../src/storage/upload-store.ts';
import { manualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });

/** A bucket whose gets fail with the scripted failures first (an Error: a local write error), then succeed. */
function scriptedObjects(script: Array<ObjectStoreFailure | Error>) {
  const gets: string[] = [];
  const objects: ObjectStore = {
    location: 's3://bucket/',
    putFile: async () => undefined,
    async getFile(key, file) {
      gets.push(key);
      const next = script.shift();
      if (next instanceof Error) throw next;
      if (next !== undefined) throw new ObjectStoreError(next, 'get');
      await writeFile(file, 'audio');
    },
    deleteUnder: async () => 0,
    list: async function* () {},
    probe: async () => undefined,
    close: () => undefined,
  };
  return { objects, gets };
}

/** Runs `work`, moving the manual clock on whenever it waits, until it settles. */
async function settle<T>(work: Promise<T>, clock: ReturnType<typeof manualClock>): Promise<T | Error> {
  let done = false;
  const result = work.then(
    (v) => v,
    (err: unknown) => err as Error,
  );
  void result.finally(() => {
    done = true;
  });
  for (let i = 0; i < 1000 && !done; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    clock.fire();
  }
  return result;
}

describe("S3 uploads: fetching a job's upload to this host", () => {
  let dir: string;
  /** Where a download goes: the run's own copy. */
  let file: string;
  let copies: UploadCopies;
  const id = newJobId();
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-upload-store-'));
    file = path.join(dir, 'run-upload');
    copies = { hostCopy: path.join(dir, 'upload'), runCopy: file };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("uses the copy this host has, or the run's own download: no get", async () => {
    const { objects, gets } = scriptedObjects([]);
    const uploads = createS3Uploads({ objects, logger, retryAfterS: 30 });
    await writeFile(file, 'downloaded');
    expect(await uploads.fetch(id, copies, new AbortController().signal)).toBe(file);
    await writeFile(copies.hostCopy, 'mine');
    expect(await uploads.fetch(id, copies, new AbortController().signal)).toBe(copies.hostCopy);
    expect(gets).toEqual([]);
  });

  it('tries a passing fault again after a pause, and gets the file', async () => {
    const clock = manualClock();
    const { objects, gets } = scriptedObjects(['unavailable', 'unavailable']);
    const uploads = createS3Uploads({ objects, logger, retryAfterS: 30, clock });
    expect(await settle(uploads.fetch(id, copies, new AbortController().signal), clock)).toBe(file);
    expect(gets).toEqual([`jobs/${id}/upload`, `jobs/${id}/upload`, `jobs/${id}/upload`]);
    expect(clock.now()).toBe(1_000 + 2_000);
    expect(await readFile(file, 'utf8')).toBe('audio');
  });

  it('gives up after 5 tries, and at once on a missing object, with INTERNAL', async () => {
    const clock = manualClock();
    const flaky = scriptedObjects(Array<ObjectStoreFailure>(9).fill('unavailable'));
    const failed = await settle(
      createS3Uploads({ objects: flaky.objects, logger, retryAfterS: 30, clock }).fetch(
        id,
        copies,
        new AbortController().signal,
      ),
      clock,
    );
    expect(isAppError(failed) && failed.code).toBe('INTERNAL');
    expect(flaky.gets.length).toBe(5);

    const gone = scriptedObjects(['not_found']);
    const missing = await createS3Uploads({ objects: gone.objects, logger, retryAfterS: 30 })
      .fetch(id, copies, new AbortController().signal)
      .catch((err: unknown) => err);
    expect(isAppError(missing) && missing.message).toMatch(/not_found/);
    expect(gone.gets.length).toBe(1);
  });

  it('passes a local write error on as it is (the storage guard waits on a full disk), and a cancel as its reason', async () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: file });
    const local = await createS3Uploads({ objects: scriptedObjects([full]).objects, logger, retryAfterS: 30 })
      .fetch(id, copies, new AbortController().signal)
      .catch((err: unknown) => err);
    expect(local).toBe(full);

    const clock = manualClock();
    const cancel = new AbortController();
    const reason = new Error('cancelled by the client');
    const waiting = createS3Uploads({
      objects: scriptedObjects(['unavailable']).objects,
      logger,
      retryAfterS: 30,
      clock,
    }).fetch(id, copies, cancel.signal);
    await new Promise((resolve) => setImmediate(resolve));
    cancel.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });
});

describe('S3 uploads: the put bound the orphan sweep relies on', () => {
  /** A bucket that records deletes and lists `listed`. */
  function recordingObjects(put: () => Promise<void>, listed: StoredObject[] = []) {
    const deleted: string[] = [];
    const objects: ObjectStore = {
      location: 's3://bucket/',
      putFile: put,
      getFile: async () => undefined,
      deleteUnder: async (prefix) => {
        deleted.push(prefix);
        return 1;
      },
      list: async function* () {
        yield* listed;
      },
      probe: async () => undefined,
      close: () => undefined,
    };
    return { objects, deleted };
  }

  it('a put that ended past its bound (its timer fired late: a frozen process) is deleted again and refused', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-upload-put-'));
    try {
      const file = path.join(dir, 'upload');
      await writeFile(file, 'audio');
      const id = newJobId();
      // The event loop held for 60 ms inside the put: its 20 ms abort timer cannot fire before the put ends.
      const { objects, deleted } = recordingObjects(async () => {
        const until = performance.now() + 60;
        while (performance.now() < until);
      });
      const uploads = createS3Uploads({ objects, logger, retryAfterS: 30, putLimitMs: () => 20 });
      const err: unknown = await uploads.save(id, file).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isAppError(err) && err.code).toBe('SERVER_BUSY');
      expect(isAppError(err) && err.details).toEqual({ resource: 'object_store' });
      expect(deleted).toEqual([`jobs/${id}/`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lists each job's upload with when its put surely ended: its date (whole seconds) + 1 s + the put bound", async () => {
    const [a, b] = [newJobId(), newJobId()];
    const { objects } = recordingObjects(
      async () => undefined,
      [
        { key: `jobs/${a}/upload`, bytes: 3_000, modifiedMs: 1_000_000 },
        { key: `jobs/${b}/upload`, bytes: 10, modifiedMs: null },
      ],
    );
    const uploads = createS3Uploads({ objects, logger, retryAfterS: 30, putLimitMs: (bytes) => bytes * 2 });
    expect(await uploads.list()).toEqual([
      { jobId: a, bytes: 3_000, completeByMs: 1_000_000 + 1_000 + 6_000 },
      { jobId: b, bytes: 10, completeByMs: null },
    ]);
  });
});
