import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import { AppError, errorMessage, isAppError } from '../errors.ts';
import type { DirPool } from '../resources/dir-pool.ts';
import type { JobEvents } from './events.ts';
import { failureOf, markCancelled, markFailed } from './lifecycle.ts';
import { runJobPipeline } from './job-pipeline.ts';
import { ShutdownSignal, type PipelineDeps } from './pipeline-run.ts';
import type { JobStore } from './job-store.ts';
import { fencedStore, isRunLost, RunLostError, type RunLease } from './run-fence.ts';
import { isLive, type JobRecord } from './types.ts';

export interface RunnerOptions {
  logger: Logger;
  store: JobStore;
  pipeline: PipelineDeps;
  /** Directory leases of the jobs this runner holds (queued or running here), released when each job ends. */
  leases: Pick<DirPool, 'adopt' | 'release'>;
  maxConcurrentJobs: number;
  now: () => Date;
  /** Told of every queued job that starts here and every job that ends here (metrics, webhooks). */
  events: Pick<JobEvents, 'started' | 'ended'>;
}

/** What the HTTP layer and the service's start/stop need from whatever runs jobs: this runner, or src/scale's queue. */
export interface JobQueue {
  readonly running: number;
  readonly waiting: number;
  enqueue(jobId: string): Promise<void>;
  cancel(jobId: string): Promise<void>;
  resumeUnfinished(): number | Promise<number>;
  close(graceMs: number): Promise<void>;
}

interface Active {
  controller: AbortController;
  settled: Promise<void>;
  started: boolean;
  lease: RunLease | undefined;
}

/**
 * Runs accepted jobs, at most maxConcurrentJobs at a time, and owns their cancellation. State lives in the store:
 * after a crash, `resumeUnfinished()` picks up every job that was queued or processing.
 */
export class JobRunner implements JobQueue {
  readonly #opts: RunnerOptions;
  readonly #limit: LimitFunction;
  readonly #active = new Map<string, Active>();
  readonly #drain = new AbortController();
  #closing: Promise<void> | null = null;

  constructor(opts: RunnerOptions) {
    this.#opts = opts;
    this.#limit = pLimit(opts.maxConcurrentJobs);
  }

  get running(): number {
    return this.#limit.activeCount;
  }

  get waiting(): number {
    return this.#limit.pendingCount;
  }

  /**
   * Starts the job when a slot is free; the returned promise settles when the job has ended here (never rejects).
   * `lease`: the hold on the job granted from outside (the scale-out queue's lock); the run stops when it is lost.
   */
  enqueue(jobId: string, lease?: RunLease): Promise<void> {
    if (this.#closing) return Promise.resolve();
    const existing = this.#active.get(jobId);
    if (existing) return existing.settled;
    // The process that runs a job holds its directory lease from here until the job ends (the upload's lease
    // is handed over; a job resumed after a crash or taken from the scale-out queue takes one here). The size
    // is read from the store; the job is registered as active before that read, so a second enqueue of the same
    // job meanwhile finds it.
    const adopted = this.#opts.store.getJob(jobId).then(
      (job) => job?.audio.size_bytes ?? 0,
      () => 0,
    );
    const leased = adopted.then((bytes) => this.#opts.leases.adopt(jobId, bytes));
    const controller = new AbortController();
    const active: Active = { controller, settled: Promise.resolve(), started: false, lease };
    if (lease) {
      const onLost = () => controller.abort(lease.lost.reason);
      if (lease.lost.aborted) onLost();
      else lease.lost.addEventListener('abort', onLost, { once: true });
    }
    active.settled = this.#limit(async () => {
      active.started = true;
      await leased;
      return this.#run(jobId, active);
    }).finally(() => this.#active.delete(jobId));
    this.#active.set(jobId, active);
    return active.settled;
  }

  /** Stops the job if it is queued or running and waits until its ffmpeg and requests have stopped. */
  async cancel(jobId: string): Promise<void> {
    const active = this.#active.get(jobId);
    if (!active) return;
    active.controller.abort(new AppError('CANCELLED', 'The job was cancelled.'));
    // A job still waiting for a slot has nothing running: it returns at once when its turn comes.
    if (active.started) await active.settled;
  }

  async resumeUnfinished(): Promise<number> {
    const jobs = await this.#opts.store.unfinishedJobs();
    for (const job of jobs) {
      this.#opts.logger.info(
        { jobId: job.id, status: job.status },
        'resuming job left unfinished by a previous process',
      );
      void this.enqueue(job.id);
    }
    return jobs.length;
  }

  /**
   * Graceful stop: no new jobs and no new chunk requests; requests in flight get `graceMs` to finish and store
   * their results, then everything is aborted. Jobs stay `processing` in the store and resume at the next start.
   * Idempotent.
   */
  close(graceMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#drain.abort();
      const all = [...this.#active.values()];
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([Promise.allSettled(all.map((a) => a.settled)), grace]);
      clearTimeout(timer);
      for (const a of all) a.controller.abort(new ShutdownSignal());
      await Promise.allSettled(all.map((a) => a.settled));
    })();
    return this.#closing;
  }

  /**
   * A job's end state written once, without waiting for space: on a full volume the job stays live in the store
   * (it resumes at the next start) instead of the error ending the process.
   */
  async #record(log: Logger, what: string, write: () => Promise<unknown>): Promise<void> {
    try {
      if (!(await this.#opts.pipeline.storage.attempt(what, write)))
        log.warn({ what }, 'not stored: the data volume is full; the job resumes at the next start');
    } catch (err) {
      log.error({ err: errorMessage(err), what }, 'could not store the end of the job');
    }
  }

  /** A listener that throws is logged; the job's own bookkeeping goes on. */
  #tell(log: Logger, event: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      log.error({ err }, `a listener of the job ${event} failed`);
    }
  }

  async #run(jobId: string, active: Active): Promise<void> {
    const taken = await this.#takeUp(jobId, active.controller.signal);
    if (taken) await this.#runTaken(taken.job, taken.epoch, active);
  }

  /**
   * The job and the epoch of the run this runner takes it up for; null when there is nothing to run here (the
   * directory lease is then given back, except on shutdown: the job resumes at the next start).
   */
  async #takeUp(jobId: string, signal: AbortSignal): Promise<{ job: JobRecord; epoch: number } | null> {
    const { store, logger } = this.#opts;
    let job: JobRecord | null;
    let epoch: number | null = null;
    try {
      job = await store.getJob(jobId);
      // Taking the job up fences off every earlier run: from here on only this run's writes apply.
      if (job && !signal.aborted && !this.#drain.signal.aborted) epoch = await store.takeRun(jobId);
    } catch (err) {
      // The store did not answer: the job stays as stored and is taken up again by the next resume.
      logger.error({ jobId, err: errorMessage(err) }, 'could not read the job to run it');
      this.#opts.leases.release(jobId);
      return null;
    }
    // Shutdown keeps the lease (the job resumes at the next start); a deleted or cancelled job has ended here.
    if (this.#drain.signal.aborted) return null;
    // Gone, cancelled, or ended since it was queued (takeRun takes only a live job).
    if (!job || signal.aborted || epoch === null) {
      this.#opts.leases.release(jobId);
      return null;
    }
    return { job, epoch };
  }

  async #runTaken(job: JobRecord, epoch: number, { controller, lease }: Active): Promise<void> {
    const jobId = job.id;
    const signal = controller.signal;
    const log = this.#opts.logger.child({ jobId, run: epoch });
    const runStore = fencedStore(this.#opts.store, epoch, (err) =>
      controller.abort(new RunLostError('a later run took the job over', { cause: err })),
    );
    const pipeline = { ...this.#opts.pipeline, store: runStore };
    if (job.status === 'queued') this.#tell(log, 'start', () => this.#opts.events.started(job, this.#opts.now()));
    let lost = false;
    try {
      // Chunks that were with the provider when an earlier run stopped have no result: they go again.
      await runStore.resetChunksInFlight(jobId);
      // Without a queue lease this process is its DATA_DIR's only runner (the DATA_DIR lock): the chunk files of
      // earlier runs are its own dead lives'. With one, an earlier run may be a frozen worker's, which removes its
      // own (or the cleanup does, once the job has ended).
      if (!lease)
        await this.#opts.pipeline.dirs.removeChunks(jobId).catch((err: unknown) => {
          log.warn({ err: errorMessage(err) }, "could not remove an earlier run's chunk files");
        });
      const held = lease ? () => lease.held() : undefined;
      const signals = { abort: signal, drain: this.#drain.signal, epoch, ...(held && { held }) };
      await runJobPipeline(job, pipeline, signals, log);
    } catch (err) {
      lost = isRunLost(err) || isRunLost(signal.reason);
      // A stage stopped by shutdown (silence detection, the probe) says CANCELLED: only a cancel of this job (its
      // signal aborted with another reason than shutdown's) is the client's; otherwise the job resumes at the next start.
      const byClient = signal.aborted && !(signal.reason instanceof ShutdownSignal);
      const drained = this.#drain.signal.aborted && !byClient && isAppError(err) && err.code === 'CANCELLED';
      if (lost) log.warn({ err: errorMessage(err) }, 'job run stopped: this runner no longer holds the job');
      else await this.#settle(runStore, jobId, drained ? new ShutdownSignal() : err, log);
    } finally {
      if (lost) await this.#releaseLost(jobId, epoch, log);
      else await this.#release(jobId, epoch, log);
    }
  }

  /** What a run that threw leaves in the store: nothing on shutdown, the cancel, or the failure with its code. */
  async #settle(store: JobStore, jobId: string, err: unknown, log: Logger): Promise<void> {
    if (err instanceof ShutdownSignal) {
      log.info('job interrupted by shutdown; it resumes at the next start');
      return;
    }
    if (isAppError(err) && err.code === 'CANCELLED') {
      log.info('job cancelled');
      // One try, no wait for space: the client's DELETE waits on this, and its own delete answers 503 on a full volume.
      await this.#record(log, 'job cancel', () => markCancelled(store, jobId, this.#opts.now()));
      return;
    }
    const failure = failureOf(err);
    log.error({ err, code: failure.code }, 'job failed');
    const failed = () => markFailed(store, jobId, failure, this.#opts.now());
    await this.#opts.pipeline.storage.run('job failure', failed, this.#drain.signal).catch((writeErr: unknown) => {
      log.error(
        { err: errorMessage(writeErr) },
        'the job failure could not be stored; the job resumes at the next start',
      );
    });
  }

  /**
   * After every run: chunk files go; a job that ended (or was deleted) is announced, loses its upload when it
   * completed or failed, and gives its lease back. A job left queued or processing was interrupted by shutdown
   * and keeps its lease.
   */
  async #release(jobId: string, epoch: number, log: Logger): Promise<void> {
    await this.#removeRunChunks(jobId, epoch, log);
    const ended = await this.#opts.store.getJob(jobId).catch((err: unknown) => {
      log.error({ err: errorMessage(err) }, 'could not read the job after its run; it is left as stored');
      return undefined;
    });
    if (ended === undefined) return;
    const status = ended?.status;
    const hasEnded = status === undefined || !isLive(status);
    if (ended && hasEnded) this.#tell(log, 'end', () => this.#opts.events.ended(ended));
    try {
      if (status === 'completed' || status === 'failed') await this.#opts.pipeline.dirs.removeUpload(jobId);
      // Only DELETE cancels, so a cancelled job is being deleted: its directory goes on the host that ran it too.
      // In scale-out the DELETE may run on another host, and this host's cleanup keeps a directory without a row.
      else if (status === undefined || status === 'cancelled') await this.#opts.pipeline.dirs.remove(jobId);
    } finally {
      if (hasEnded) this.#opts.leases.release(jobId);
    }
  }

  /**
   * After a run that lost the job: only what this run owns goes (its chunk files, its directory lease). The job's
   * upload and directory, and its end, belong to the run that holds it now.
   */
  async #releaseLost(jobId: string, epoch: number, log: Logger): Promise<void> {
    await this.#removeRunChunks(jobId, epoch, log);
    this.#opts.leases.release(jobId);
  }

  async #removeRunChunks(jobId: string, epoch: number, log: Logger): Promise<void> {
    await this.#opts.pipeline.dirs.removeChunks(jobId, epoch).catch((err: unknown) => {
      log.warn({ err: errorMessage(err) }, 'could not remove chunk files');
    });
  }
}
