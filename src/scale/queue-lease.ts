import type { Logger } from 'pino';
import { RunLostError, type RunLease } from '../jobs/run-fence.ts';

export interface QueueLeaseOptions {
  /** Sets the job's queue lock to `lockMs` from when Redis runs it; resolves whether the lock was still ours. */
  extend(): Promise<boolean>;
  lockMs: number;
  logger: Logger;
  /** A monotonic clock in ms (a frozen process's clock moves on; a wall clock may be set back). @default performance.now */
  clock?: () => number;
}

/**
 * A worker's hold on a job through its BullMQ lock, with a local end it can check without asking Redis. Each
 * extension is sent at a time this process knows, and Redis cannot have set the lock before it was sent: the lock
 * holds at least until then + lockMs. So a runner that was frozen (GC pause, SIGSTOP, a loaded host) past that end
 * knows on waking, before any timer or answer of Redis has run, that another worker may have the job: `held()` is
 * false and the run stops. A refused extension (the lock is another worker's token, or expired) ends it too.
 * BullMQ's own lock renewal goes on beside this one; the two only ever extend the same lock.
 */
export class QueueLease implements RunLease {
  readonly #opts: QueueLeaseOptions;
  readonly #clock: () => number;
  readonly #controller = new AbortController();
  /** Until when the lock is known to hold (monotonic ms); nothing is known before the first extension. */
  #until: number;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(opts: QueueLeaseOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? (() => performance.now());
    this.#until = this.#clock();
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  held(): boolean {
    if (this.#controller.signal.aborted) return false;
    if (this.#clock() < this.#until) return true;
    this.lose('its queue lock was not extended in time');
    return false;
  }

  lose(detail: string): void {
    if (this.#controller.signal.aborted) return;
    this.#opts.logger.warn({ detail }, 'lost the queue lock of the job');
    this.#controller.abort(new RunLostError(detail));
    this.end();
  }

  /**
   * Extends the lock now (the run starts only once this held: it resolves whether it did), then every quarter of
   * the lock's duration until `end()`. A timer is not a clock: a late one only makes `held()` turn false.
   */
  async start(): Promise<boolean> {
    await this.#extend();
    this.#arm();
    return !this.#controller.signal.aborted && this.held();
  }

  end(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
  }

  #arm(): void {
    if (this.#ended) return;
    this.#timer = setTimeout(() => void this.#extend().finally(() => this.#arm()), this.#opts.lockMs / 4);
    this.#timer.unref();
  }

  async #extend(): Promise<void> {
    const sentAt = this.#clock();
    try {
      if (await this.#opts.extend()) this.#until = Math.max(this.#until, sentAt + this.#opts.lockMs);
      else this.lose('the queue lock is no longer ours (another worker took the job over, or it expired)');
    } catch (err) {
      // Redis did not answer: the lock may still be ours. held() turns false once the known end passes.
      this.#opts.logger.warn({ err }, 'could not extend the queue lock of the job');
    }
  }
}
