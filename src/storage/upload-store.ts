import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { isJobId } from '../jobs/ids.ts';
import type { ComponentCheck } from '../resources/component-check.ts';
import { monotonicClock, sleep, type Clock } from '../transcribe/backoff.ts';
import { ObjectStoreError, toObjectStoreError } from './object-store-error.ts';
import type { ObjectStore } from './object-store.ts';

/** Where a run finds the upload on this host, or puts its own download of it (UploadStore.fetch). */
export interface UploadCopies {
  hostCopy: string;
  runCopy: string;
}

/** A job's upload as the bucket holds it. */
export interface StoredUpload {
  jobId: string;
  bytes: number;
  /**
   * By when (the store's clock, ms) the put of these objects had surely ended: their latest date plus the put's
   * bound. The date is the put's start at the latest, and a put that outlives its bound is aborted, or, if its
   * timer fired late, deleted again and refused (`save`). Null when the store gives no date.
   */
  completeByMs: number | null;
}

/**
 * Where an accepted upload is kept for as long as its job needs it. `local`: the file in DATA_DIR/jobs/<id>/ is
 * the only copy, so there is nothing to put, get or list. `s3`: the bucket holds it and a host's DATA_DIR is only
 * scratch; the host that received it puts it, whichever host runs the job gets it.
 */
export interface UploadStore {
  readonly driver: 'local' | 's3';
  /** Makes the received file durable where every host finds it; throws SERVER_BUSY when the store does not take it. */
  save(jobId: string, file: string): Promise<void>;
  /**
   * The file a run reads the upload from: the copy this host has (`hostCopy`: received here, or on local disk the
   * only one), else one downloaded to `runCopy`. The download is the run's own: a run that loses the job to another
   * host removes it with its other files, while a copy at `hostCopy` may be another process's on a shared DATA_DIR.
   */
  fetch(jobId: string, where: UploadCopies, signal: AbortSignal): Promise<string>;
  /** Deletes the job's objects (none: nothing happens); throws SERVER_BUSY when the store does not answer. */
  remove(jobId: string): Promise<void>;
  /** Every job with an upload in the store, for the retention sweep. */
  list(): Promise<StoredUpload[]>;
  /** At start: throws when the store can never work (bucket missing, no access); a passing fault is logged. */
  start(): Promise<void>;
  /** The `object_store` component of /health/ready; null for local disk (the `disk` component covers it). */
  check(): Promise<ComponentCheck | null>;
  close(): void;
}

export const localUploads: UploadStore = {
  driver: 'local',
  save: async () => undefined,
  fetch: async (_jobId, { hostCopy }) => hostCopy,
  remove: async () => undefined,
  list: async () => [],
  start: async () => undefined,
  check: async () => null,
  close: () => undefined,
};

/** Tries of a download that fails for a passing fault (each is the SDK's 3 attempts), and the pause after each. */
const FETCH_TRIES = 5;
const FETCH_PAUSE_MS = [1_000, 2_000, 5_000, 10_000];
/** A health probe that takes longer than this reports the store down rather than hold the readiness answer. */
const PROBE_TIMEOUT_MS = 2_000;
/**
 * A put is aborted past a minute plus a second per MiB (2 GiB: 35 min): a store slower than that would hold the
 * client's upload slot and its job directory without end (each request is bounded, a trickle of bytes is not).
 */
const PUT_BASE_MS = 60_000;
const PUT_FLOOR_BYTES_PER_S = 1024 * 1024;
export const putTimeLimitMs = (bytes: number): number => PUT_BASE_MS + Math.ceil(bytes / PUT_FLOOR_BYTES_PER_S) * 1_000;

/** The later of two times; unknown when either is (an object without a date leaves its job undated). */
const laterOf = (a: number | null, b: number | null): number | null =>
  a === null || b === null ? null : Math.max(a, b);

const jobKeyPrefix = (jobId: string) => `jobs/${jobId}/`;
const uploadKey = (jobId: string) => `${jobKeyPrefix(jobId)}upload`;

export function createS3Uploads(deps: {
  objects: ObjectStore;
  logger: Logger;
  retryAfterS: number;
  /** The pauses between download tries. @default monotonicClock */
  clock?: Clock;
  /** How long the put of a file of `bytes` may take before it is aborted. @default putTimeLimitMs */
  putLimitMs?: (bytes: number) => number;
}): UploadStore {
  const { objects, logger, retryAfterS, clock = monotonicClock, putLimitMs = putTimeLimitMs } = deps;
  const busy = (what: string, err: ObjectStoreError) => {
    logger.warn({ failure: err.kind, storeCode: err.storeCode, status: err.status }, `object store: ${what} failed`);
    return new AppError('SERVER_BUSY', `The object store did not answer (${what}); retry later.`, {
      retryable: true,
      retryAfterS,
      details: { resource: 'object_store' },
    });
  };

  return {
    driver: 's3',

    async save(jobId, file) {
      const started = performance.now();
      const { size } = await stat(file);
      const limitMs = putLimitMs(size);
      try {
        await objects.putFile(uploadKey(jobId), file, AbortSignal.timeout(limitMs));
      } catch (err) {
        const failure = toObjectStoreError(err, 'put');
        if (failure.kind === 'cancelled')
          logger.warn({ jobId, bytes: size, limitMs }, 'object store: put too slow, aborted');
        throw busy('storing the upload', failure);
      }
      const ms = performance.now() - started;
      // A timer is not a clock: one that fired late (a frozen process) let the put end past its bound, where the
      // cleanup may already take its object, dated at the put's start, for an orphan. It is not this job's then.
      if (ms > limitMs) {
        logger.warn({ jobId, bytes: size, limitMs, ms: Math.round(ms) }, 'object store: put ended past its bound');
        // A delete that fails leaves an object without a row, which the orphan sweep takes.
        await objects.deleteUnder(jobKeyPrefix(jobId)).catch(() => undefined);
        throw busy('storing the upload', new ObjectStoreError('cancelled', 'put'));
      }
      logger.info({ jobId, ms: Math.round(ms) }, 'upload stored in the object store');
    },

    async fetch(jobId, { hostCopy, runCopy }, signal) {
      for (const file of [hostCopy, runCopy]) {
        const isFile = await stat(file).then(
          (s) => s.isFile(),
          () => false,
        );
        if (isFile) return file;
      }
      const file = runCopy;
      const started = performance.now();
      for (let attempt = 1; ; attempt++) {
        try {
          await objects.getFile(uploadKey(jobId), file, signal);
          logger.info({ jobId, ms: Math.round(performance.now() - started) }, 'upload fetched from the object store');
          return file;
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          // A local write error (the scratch disk full) goes to the caller as it is.
          if (!(err instanceof ObjectStoreError)) throw err;
          const failure = err;
          const log = { jobId, failure: failure.kind, storeCode: failure.storeCode, attempt };
          if (failure.kind !== 'unavailable' || attempt >= FETCH_TRIES) {
            logger.error(log, 'could not fetch the upload from the object store');
            throw new AppError('INTERNAL', `The upload could not be read from the object store (${failure.kind}).`);
          }
          logger.warn(log, 'fetching the upload failed; trying again');
          await sleep(FETCH_PAUSE_MS[attempt - 1] ?? 10_000, signal, clock);
        }
      }
    },

    async remove(jobId) {
      try {
        await objects.deleteUnder(jobKeyPrefix(jobId));
      } catch (err) {
        throw busy('deleting the job', toObjectStoreError(err, 'delete'));
      }
    },

    async list() {
      const byJob = new Map<string, StoredUpload>();
      for await (const object of objects.list('jobs/')) {
        const jobId = object.key.split('/')[1] ?? '';
        if (!isJobId(jobId)) continue;
        const seen = byJob.get(jobId);
        // Dates come in whole seconds: the object's real date (at or after the put's start) is up to 1 s later.
        const completeBy = object.modifiedMs === null ? null : object.modifiedMs + 1_000 + putLimitMs(object.bytes);
        byJob.set(jobId, {
          jobId,
          bytes: (seen?.bytes ?? 0) + object.bytes,
          completeByMs: seen ? laterOf(seen.completeByMs, completeBy) : completeBy,
        });
      }
      return [...byJob.values()];
    },

    async start() {
      try {
        await objects.probe(AbortSignal.timeout(PROBE_TIMEOUT_MS * 5));
        logger.info({ location: objects.location }, 'object store answers');
      } catch (err) {
        const failure = toObjectStoreError(err, 'head bucket');
        if (failure.permanent) {
          throw new Error(
            `object store ${objects.location}: ${failure.message}; check STORAGE_URL and the credentials`,
            // probe() throws only ObjectStoreErrors, which carry no part of the SDK's error.
            { cause: err },
          );
        }
        logger.warn({ failure: failure.kind, storeCode: failure.storeCode }, 'object store does not answer yet');
      }
    },

    async check() {
      try {
        await objects.probe(AbortSignal.timeout(PROBE_TIMEOUT_MS));
        return { status: 'ok', detail: `${objects.location} answers` };
      } catch (err) {
        const failure = toObjectStoreError(err, 'head bucket');
        const kind = failure.kind === 'cancelled' ? `no answer within ${PROBE_TIMEOUT_MS} ms` : failure.message;
        return { status: 'down', detail: `${objects.location}: ${kind}` };
      }
    },

    close: () => objects.close(),
  };
}
