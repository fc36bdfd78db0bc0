import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { isLive } from '../jobs/types.ts';
import { dirAction, purgeCutoff, validatePolicy, type RetentionPolicy } from './cleanup-policy.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import { localUploads, type StoredUpload, type UploadStore } from '../storage/upload-store.ts';

export interface CleanupConfig extends RetentionPolicy {
  /** Pause between two background passes (measured from the end of one to the start of the next). */
  intervalMs: number;
  /** How long this process must have seen an object without a job row before it deletes it. @default ORPHAN_OBJECT_GRACE_MS */
  orphanGraceMs?: number;
}

export interface CleanupDeps {
  store: Pick<JobStore, 'jobLifecycle' | 'endedJobsBefore' | 'deleteJob'>;
  dirs: Pick<JobDirs, 'list' | 'inProcess' | 'usage' | 'remove' | 'removeChunks'>;
  /** The object store's copies of uploads, under the same policy as the directories. @default local disk: none */
  uploads?: Pick<UploadStore, 'driver' | 'list' | 'remove'>;
  logger: Logger;
  config: CleanupConfig;
  clock: () => Date;
  /** Rows purged per query, so one pass never holds a huge result set. @default 500 */
  batchSize?: number;
}

export interface CleanupReport {
  emergency: boolean;
  /** Job rows (with their transcripts) deleted because their retention ran out. */
  purgedJobs: number;
  /** Job directories deleted: ended jobs past upload retention, and orphans. */
  removedDirs: number;
  orphans: number;
  /** Bytes of the files deleted. */
  freedBytes: number;
  /** Jobs whose objects were deleted from the object store (an orphan among them is counted in `orphans` too). */
  removedObjects: number;
}

export interface CleanupManager {
  /** One pass of every policy, after any pass in progress. */
  sweep(): Promise<CleanupReport>;
  /** A pass that also deletes retained uploads of ended jobs; requests while one is queued or running share it. */
  emergency(): Promise<CleanupReport>;
  /** The job has ended: its files go now when uploads are not retained, else a later pass removes them. */
  releaseUpload(jobId: string): Promise<void>;
  /** Runs a pass every `intervalMs` in the background; the timer never keeps the process alive. */
  start(): void;
  /** Stops the timer and waits for a pass in progress; later requests do nothing. Idempotent. */
  stop(): Promise<void>;
}

const emptyReport = (emergency: boolean): CleanupReport => ({
  emergency,
  purgedJobs: 0,
  removedDirs: 0,
  orphans: 0,
  freedBytes: 0,
  removedObjects: 0,
});

/**
 * An object without a job row is an upload between its put and its row, on whichever host received it, for a
 * moment (the row's write, which waits out a database restart for seconds); one without a row this long after
 * its put surely ended, or listed so by this process for this long, was left by a host that died in between (or a
 * delete the store missed).
 */
export const ORPHAN_OBJECT_GRACE_MS = 15 * 60_000;

/**
 * Deletes what no live job references, by policy: ended jobs' files once their upload retention is over (at once
 * under pressure), orphaned directories, and rows plus transcripts once RETENTION_HOURS have passed. Passes run
 * one at a time; the files of queued and processing jobs, and uploads still streaming, are never touched.
 */
export function createCleanupManager(deps: CleanupDeps): CleanupManager {
  const { store, dirs, logger, config, clock } = deps;
  const uploads = deps.uploads ?? localUploads;
  validatePolicy(config);
  const batchSize = deps.batchSize ?? 500;
  const orphanGraceMs = config.orphanGraceMs ?? ORPHAN_OBJECT_GRACE_MS;
  /**
   * Objects without a row, by job id, with when this process first listed them so. The object's own date alone
   * cannot say how long it has been there: S3 dates a multipart upload's object at the upload's start, so the
   * object of a put that took longer than the grace would be "old" the moment it appears, before its row is
   * written; its date plus the put's bound can (`completeByMs`), and decides for a process restarted more often
   * than the grace, which never lists an object for that long. A listing shows complete objects only, so an upload
   * still going up is never among them.
   */
  const rowless = new Map<string, number>();
  let tail: Promise<unknown> = Promise.resolve();
  let queuedEmergency: Promise<CleanupReport> | null = null;
  let timer: NodeJS.Timeout | null = null;
  /** The chain of passes has one owner: `timer` is null while a pass runs, so it cannot tell whether one is started. */
  let started = false;
  let stopped = false;

  async function removeDir(id: string, report: CleanupReport): Promise<void> {
    report.freedBytes += await dirs.usage(id);
    await dirs.remove(id);
    report.removedDirs += 1;
    // Local files first: a store that does not answer fails the pass after them, and the object sweep of a later
    // pass deletes what is left.
    if (uploads.driver !== 'local') {
      await uploads.remove(id);
      report.removedObjects += 1;
    }
  }

  /**
   * Whether an object without a row may still be an upload between its put and its row: its put ended less than
   * the grace ago (or the store gives no date), and this process has listed it so for less than the grace.
   */
  function arriving({ jobId, completeByMs }: StoredUpload, nowMs: number): boolean {
    const first = rowless.get(jobId);
    if (first === undefined) rowless.set(jobId, nowMs);
    const putEnded = completeByMs !== null && nowMs - completeByMs >= orphanGraceMs;
    return !putEnded && nowMs - (first ?? nowMs) < orphanGraceMs;
  }

  async function sweepObjects(report: CleanupReport): Promise<void> {
    if (uploads.driver === 'local') return;
    const listed = await uploads.list();
    const nowMs = clock().getTime();
    // Only what this listing shows stays tracked: the map holds no more than the bucket's rowless objects.
    const ids = new Set(listed.map((object) => object.jobId));
    for (const id of rowless.keys()) if (!ids.has(id)) rowless.delete(id);
    for (const object of listed) {
      if (stopped) return;
      const { jobId } = object;
      const job = await store.jobLifecycle(jobId);
      if (job) rowless.delete(jobId);
      const inProcess = !job && arriving(object, nowMs);
      if (dirAction({ job, inProcess }, nowMs, config, report.emergency) !== 'remove-dir') continue;
      await uploads.remove(jobId);
      rowless.delete(jobId);
      if (!job) report.orphans += 1;
      report.removedObjects += 1;
    }
  }

  async function purgeExpired(report: CleanupReport): Promise<void> {
    const cutoff = purgeCutoff(clock().getTime(), config);
    for (;;) {
      const ids = await store.endedJobsBefore(cutoff, batchSize);
      for (const id of ids) {
        // Row first: a crash between the two leaves a directory without a row, which the start sweep removes.
        await store.deleteJob(id);
        report.purgedJobs += 1;
        await removeDir(id, report);
      }
      if (ids.length < batchSize || stopped) return;
    }
  }

  async function sweepDirs(report: CleanupReport): Promise<void> {
    const nowMs = clock().getTime();
    for (const id of await dirs.list()) {
      if (stopped) return;
      // Whether this process is writing the directory is read before the row: an upload accepted meanwhile has
      // its row stored before it lets the directory go, so one of the two always keeps it.
      const inProcess = dirs.inProcess(id);
      const job = await store.jobLifecycle(id);
      const action = dirAction({ job, inProcess }, nowMs, config, report.emergency);
      if (action === 'remove-dir') {
        if (!job) report.orphans += 1;
        await removeDir(id, report);
      } else if (action === 'remove-chunks' && uploads.driver === 'local') {
        await dirs.removeChunks(id);
      } else if (action === 'remove-chunks') {
        // The bucket keeps the retained upload; this host's copy (left by a stop before the job's end was handled) is scratch.
        report.freedBytes += await dirs.usage(id);
        await dirs.remove(id);
        report.removedDirs += 1;
      }
    }
  }

  async function pass(emergency: boolean): Promise<CleanupReport> {
    const report = emptyReport(emergency);
    if (stopped) return report;
    const started = performance.now();
    // Under pressure files go first: deleting rows needs room in the store's log, which a full volume may not have.
    const steps = emergency ? [sweepDirs, purgeExpired, sweepObjects] : [purgeExpired, sweepDirs, sweepObjects];
    for (const step of steps) await step(report);
    const level = emergency || report.purgedJobs + report.removedDirs + report.removedObjects > 0 ? 'info' : 'debug';
    logger[level]({ ...report, ms: Math.round(performance.now() - started) }, 'cleanup pass');
    return report;
  }

  function enqueue(emergency: boolean): Promise<CleanupReport> {
    const run = tail.then(() => pass(emergency));
    tail = run.catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'cleanup pass failed'));
    return run;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      // The next pass is scheduled only when this one has finished: passes never pile up behind a slow disk.
      void enqueue(false)
        .catch(() => undefined)
        .finally(schedule);
    }, config.intervalMs);
    timer.unref();
  }

  return {
    sweep: () => enqueue(false),
    emergency() {
      queuedEmergency ??= enqueue(true).finally(() => {
        queuedEmergency = null;
      });
      return queuedEmergency;
    },
    async releaseUpload(jobId) {
      const kept = config.uploadRetentionMs > 0;
      // With an object store the local file is only this host's copy: it goes whether or not the upload is kept.
      if (kept && uploads.driver === 'local') return;
      const job = await store.jobLifecycle(jobId);
      if (job && isLive(job.status)) return;
      await dirs.remove(jobId);
      if (kept) return;
      await uploads.remove(jobId).catch((err: unknown) => {
        // The object sweep deletes it once the store answers again: the job has ended and keeps no upload.
        logger.warn({ jobId, err: errorMessage(err) }, 'could not delete the upload from the object store');
      });
    },
    start() {
      if (stopped || started) return;
      started = true;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await tail;
    },
  };
}
