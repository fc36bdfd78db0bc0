import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { errorMessage } from '../errors.ts';
import { markFailed } from '../jobs/lifecycle.ts';
import type { JobQueue, JobRunner } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import { isLive } from '../jobs/types.ts';
import type { ComponentCheck } from '../resources/component-check.ts';
import { CLOSE_WITHIN_MS, closeWithin, within } from './bounded-close.ts';
import { QueueLease } from './queue-lease.ts';
import { redisUnavailable } from './shared-redis.ts';

export interface QueueRunnerOptions {
  redisUrl: string;
  connection: ConnectionOptions;
  prefix: string;
  role: Config['scale']['role'];
  /** Runs the jobs this process's BullMQ worker takes (unused for ROLE=api). */
  local: JobRunner;
  store: JobStore;
  logger: Logger;
  /** Jobs one worker process runs at once (MAX_CONCURRENT_JOBS). */
  concurrency: number;
  /** BullMQ lock: renewed every half of it while the worker lives; a dead worker's job is taken back after it. */
  lockDurationMs: number;
  /** How often workers look for jobs whose lock has expired. */
  stalledIntervalMs: number;
  /** Ends processes a dead worker left on this job's files (its ffmpeg lives on after kill -9). */
  sweepStrays(jobId: string): Promise<void>;
  /** How long DELETE waits for the worker running the job to stop it. @default 30000 */
  cancelWaitMs?: number;
  /** The Retry-After of a cancel refused while Redis does not answer (PRESSURE_RETRY_AFTER_S). */
  retryAfterS: number;
  /** API processes put unfinished jobs on the queue again this often (a no-op for those already there). @default 30000 */
  reconcileMs?: number;
  now: () => Date;
}

interface QueuedJob {
  jobId: string;
}

const QUEUE = 'jobs';
/** A job taken back this many times (its workers kept dying on it) fails instead of killing more workers. */
const MAX_STALLED = 3;
/** BullMQ's reason for a job failed for stalling more than MAX_STALLED times (its deferred failure). */
const STALLED_TOO_OFTEN = /stalled more than allowable limit/;
/** A readiness probe waits this long for PONG: a hung Redis must not hold /health/ready. */
const PING_TIMEOUT_MS = 500;
/** A job whose row could not be read when a worker took it is taken again after this pause. */
const STORE_PAUSE_MS = 2_000;
/** A cancel's command waits this long for Redis, as the upload limits' commands do (shared-redis.ts). */
const CANCEL_ANSWER_MS = 1_000;

/**
 * Scale-out runner: accepted jobs go to a BullMQ queue in Redis; worker processes take them (at most `concurrency`
 * each) and run them with the same JobRunner and pipeline as the single-process mode. Job state stays in the shared
 * SQLite store, so any API process answers reads. A worker killed mid-job stops renewing its lock and BullMQ's
 * stalled check gives the job to another worker, whose pipeline skips the chunks with stored results. A worker shut
 * down gracefully lets requests in flight finish (the JobRunner's drain) and hands the job back to the queue.
 */
export class QueueRunner implements JobQueue {
  readonly #opts: QueueRunnerOptions;
  readonly #queue: Queue<QueuedJob>;
  readonly #worker: Worker<QueuedJob> | null;
  readonly #pub: Redis;
  readonly #sub: Redis | null;
  readonly #channel: string;
  #closing: Promise<void> | null = null;
  #reconcile: NodeJS.Timeout | undefined;
  /** The holds of the jobs this worker runs, by job id. */
  readonly #leases = new Map<string, QueueLease>();

  constructor(opts: QueueRunnerOptions) {
    this.#opts = opts;
    const { connection, prefix, logger } = opts;
    this.#channel = `${prefix}:cancel`;
    this.#queue = new Queue<QueuedJob>(QUEUE, { connection, prefix });
    this.#queue.on('error', (err) => logger.error({ err }, 'job queue error'));
    this.#pub = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.#pub.on('error', (err) => logger.error({ err }, 'redis error'));
    if (opts.role === 'api') {
      this.#worker = null;
      this.#sub = null;
      return;
    }
    this.#worker = new Worker<QueuedJob>(QUEUE, (job, token) => this.#process(job, token), {
      connection,
      prefix,
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs,
      maxStalledCount: MAX_STALLED,
      autorun: false,
    });
    this.#worker.on('error', (err) => logger.error({ err }, 'job worker error'));
    this.#worker.on('failed', (job, err) => void this.#onFailed(job, err));
    // BullMQ's own renewal failing says the same as ours: the job is another worker's now.
    this.#worker.on('lockRenewalFailed', (jobIds) => {
      for (const id of jobIds) this.#leases.get(id)?.lose('BullMQ could not renew the queue lock');
    });
    // Cancel reaches whichever worker runs the job: every worker hears it, the one that has it stops it.
    this.#sub = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.#sub.on('error', (err) => logger.error({ err }, 'redis error'));
    this.#sub.on('message', (_channel: string, jobId: string) => void opts.local.cancel(jobId));
  }

  get running(): number {
    return this.#opts.local.running;
  }

  get waiting(): number {
    return this.#opts.local.waiting;
  }

  /**
   * Whether Redis answers on this process's connection: without it no job is queued, taken or cancelled. The detail
   * names no address (the URL may carry a password, and readiness is answered without a key).
   */
  async redisHealth(): Promise<ComponentCheck> {
    // Commands wait for a reconnect (maxRetriesPerRequest: null): asking a connection that is not up would hang.
    if (this.#pub.status !== 'ready') return { status: 'down', detail: `redis connection ${this.#pub.status}` };
    try {
      if ((await within(this.#pub.ping(), PING_TIMEOUT_MS)) === 'timeout')
        return { status: 'down', detail: `redis did not answer PING within ${PING_TIMEOUT_MS} ms` };
      return { status: 'ok', detail: 'redis answers' };
    } catch (err) {
      this.#opts.logger.warn({ err }, 'redis health check failed');
      return { status: 'down', detail: 'redis PING failed' };
    }
  }

  /** The job id is the BullMQ job id: adding a job that is already queued or running is a no-op. */
  async enqueue(jobId: string): Promise<void> {
    try {
      await this.#queue.add('transcribe', { jobId }, { jobId, removeOnComplete: true, removeOnFail: true });
    } catch (err) {
      // The row stays queued: the API processes' periodic re-queue (resumeUnfinished) adds it later.
      this.#opts.logger.error({ err, jobId }, 'could not queue the job');
    }
  }

  /**
   * Returns once no worker runs the job any more (or after cancelWaitMs), so the caller may delete its row and files.
   * Throws SERVER_BUSY when Redis does not answer: the cancel cannot be said, so the job must stay (a worker may be
   * running it, and would go on paying for a job whose row is gone); the client deletes it again later.
   */
  async cancel(jobId: string): Promise<void> {
    // performance.now(): a wall clock step back would stretch this bounded wait by the step.
    const deadline = performance.now() + (this.#opts.cancelWaitMs ?? 30_000);
    for (;;) {
      // Said again on every round: a worker that took the job just after the first message did not hear it.
      await this.#promptly(() => this.#pub.publish(this.#channel, jobId));
      // A job nobody has taken yet is simply taken off the queue; a running one is stopped by its worker.
      await this.#promptly(() => this.#queue.remove(jobId).catch(() => 0));
      if (performance.now() >= deadline || (await this.#promptly(() => this.#queue.getJobState(jobId))) !== 'active')
        return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * A command a request waits on, refused while Redis is away: these connections wait through a reconnect
   * (BullMQ needs that), so one sent now would hold the request until Redis is back and then run late. Not sent
   * while this process's connection is not up; given up on after CANCEL_ANSWER_MS without an answer.
   */
  async #promptly<T>(command: () => Promise<T>): Promise<T> {
    const away = (err: unknown) => redisUnavailable(this.#opts.retryAfterS, err, this.#opts.logger);
    if (this.#pub.status !== 'ready') throw away(new Error(`redis connection ${this.#pub.status}`));
    let answer: { value: T } | undefined;
    const asked = command().then((value) => {
      answer = { value };
    });
    if ((await within(asked, CANCEL_ANSWER_MS)) === 'timeout' || !answer) {
      throw away(new Error(`redis did not answer within ${CANCEL_ANSWER_MS} ms`));
    }
    return answer.value;
  }

  /**
   * Starts the worker and, on API processes, puts every unfinished job of the store on the queue again: a no-op for
   * the ones already there, a recovery for any a Redis without persistence lost or an enqueue that failed.
   */
  async resumeUnfinished(): Promise<number> {
    if (this.#sub) {
      await this.#sub.subscribe(this.#channel);
      void this.#worker?.run();
    }
    if (this.#opts.role === 'worker') return 0;
    // Also while running: a job whose add was lost (Redis restarted without the write) is not stranded until the
    // next API start.
    this.#reconcile = setInterval(() => void this.#requeueUnfinished(), this.#opts.reconcileMs ?? 30_000);
    this.#reconcile.unref();
    return this.#requeueUnfinished();
  }

  async #requeueUnfinished(): Promise<number> {
    const jobs = await this.#opts.store.unfinishedJobs();
    for (const job of jobs) await this.enqueue(job.id);
    return jobs.length;
  }

  close(graceMs: number): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#reconcile);
      // The worker stops taking jobs at once; its running jobs end through the local runner's drain below.
      const worker = this.#worker;
      const workerClosed = worker
        ? closeWithin('queue worker', worker, this.#opts.logger, graceMs + CLOSE_WITHIN_MS)
        : null;
      await this.#opts.local.close(graceMs);
      await workerClosed;
      await closeWithin('job queue', this.#queue, this.#opts.logger);
      this.#sub?.disconnect();
      this.#pub.disconnect();
    })();
    return this.#closing;
  }

  async #process(job: Job<QueuedJob>, token: string | undefined): Promise<void> {
    const { jobId } = job.data;
    const { local, logger } = this.#opts;
    const log = logger.child({ jobId });
    const before = await this.#statusOr(job, token, log, STORE_PAUSE_MS);
    // Re-queued by a reconcile that read the row just before the job ended: nothing left to do.
    if (before === undefined || !isLive(before)) return;
    const lockMs = this.#opts.lockDurationMs;
    const lease = new QueueLease({
      extend: async () => (await job.extendLock(token ?? '', lockMs)) === 1,
      lockMs,
      logger: log,
    });
    this.#leases.set(jobId, lease);
    try {
      // The run starts only while the lock is known to be ours; it stops as soon as that is no longer so.
      if (await lease.start()) {
        // This worker holds the job's lock now: whatever else works on the job's files belongs to a dead (or
        // frozen) worker. The run fences off that worker's writes and sends its requests in flight again.
        await this.#opts.sweepStrays(jobId);
        if (job.attemptsStarted > 1 || job.stalledCounter > 0)
          log.info({ stalled: job.stalledCounter }, 'resuming a job another worker left');
        await local.enqueue(jobId, lease);
      }
    } finally {
      lease.end();
      this.#leases.delete(jobId);
    }
    if (lease.lost.aborted) {
      // Most likely another worker has the job (and its lock): nothing of it is this worker's to finish. If the
      // lock was still ours after all (it was only not extended in time), the job goes back to the queue.
      await job.moveToDelayed(Date.now(), token).catch(() => undefined);
      throw new DelayedError();
    }
    const status = await this.#statusOr(job, token, log, 0);
    if (status === undefined || !isLive(status)) return;
    // Stopped by this worker's shutdown: back to the queue at once for another worker (or this one after restart).
    log.info('handing the job back to the queue');
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  /**
   * The job's status in the store; when the store does not answer, the job goes back to the queue (after `pauseMs`)
   * and this throws BullMQ's DelayedError. Any other error of the processor would be the job's failure to BullMQ,
   * which `#onFailed` stores: a store outage must not fail every job the workers take meanwhile.
   */
  async #statusOr(job: Job<QueuedJob>, token: string | undefined, log: Logger, pauseMs: number) {
    try {
      return (await this.#opts.store.getJob(job.data.jobId))?.status;
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'could not read the job from the store; back to the queue');
      await job.moveToDelayed(Date.now() + pauseMs, token);
      throw new DelayedError();
    }
  }

  /** Fails the job only if it is still live: markFailed checks that in the same write, so a job that ended meanwhile keeps its end. */
  async #onFailed(job: Job<QueuedJob> | undefined, err: Error): Promise<void> {
    if (!job) return;
    const { jobId } = job.data;
    // BullMQ fails a job its workers kept dying on (more than MAX_STALLED stalls) when a worker next takes it; any
    // other failure is an error of this worker's processor (its store, its Redis), which the log names.
    const failure = {
      code: 'INTERNAL',
      message: STALLED_TOO_OFTEN.test(err.message)
        ? 'The job was interrupted too many times.'
        : 'The job could not be run: the worker that took it failed (see the service log).',
    } as const;
    try {
      if (await markFailed(this.#opts.store, jobId, failure, this.#opts.now()))
        this.#opts.logger.error({ jobId, err }, 'job given up by the queue');
    } catch (writeErr) {
      this.#opts.logger.error(
        { jobId, err, writeErr: errorMessage(writeErr) },
        'job given up by the queue; not stored',
      );
    }
  }
}
