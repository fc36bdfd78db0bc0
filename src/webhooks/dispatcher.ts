import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import type { JobEvents } from '../jobs/events.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { JobRecord, WebhookState } from '../jobs/types.ts';
import { computeBackoffMs, systemClock, type Clock } from '../transcribe/backoff.ts';
import { atDeadline, type DeadlineTimer } from '../transcribe/deadline-timer.ts';
import { createDeliveryLeases } from './delivery-lease.ts';
import { WebhookRefusedError, type WebhookSend } from './sender.ts';
import { signWebhook } from './signature.ts';

/**
 * What became of one delivery attempt: delivered; failed_attempt (retried later); failed (the last attempt
 * failed); refused (the address is not allowed: no request was made, none will be); unsigned (WEBHOOK_SECRET is
 * unset: given up without a request).
 */
export const WEBHOOK_OUTCOMES = ['delivered', 'failed_attempt', 'failed', 'refused', 'unsigned'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export interface WebhookDispatcherOptions {
  store: Pick<
    JobStore,
    'webhookBacklog' | 'oweWebhook' | 'claimWebhook' | 'renewWebhook' | 'settleWebhook' | 'releaseWebhookLeases'
  >;
  /**
   * The job as the API shows it at `nowMs` (the HTTP layer's job resource): the delivery's data. Given by the
   * wiring, so the representation has one owner and this module stays below the HTTP layer.
   */
  describe: (job: JobRecord, nowMs: number) => Promise<{ webhook?: unknown }>;
  send: WebhookSend;
  logger: Logger;
  /** Unset: a job that somehow has a callback_url records the failure instead of sending unsigned. */
  secret: string | undefined;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Told of every attempt's outcome once it is stored (metrics); must not throw. */
  onOutcome: (outcome: WebhookOutcome) => void;
  /** This process in delivery leases (host, pid, a random part): unique among the processes sharing the store. */
  holder: string;
  /** How long a claim on a delivery lasts unless renewed (every third of it while an attempt runs). @default 30000 */
  leaseMs?: number;
  /**
   * Other processes share the store: the backlog is read again this often, so a delivery whose process died
   * mid-attempt is taken over once its lease ends. Unset: read at start only (no other process can hold one).
   */
  rescanMs?: number;
  /**
   * This process is the store's only user (it holds the DATA_DIR lock, and the store is its SQLite file): at start,
   * the leases of every other holder (earlier lives of this process, killed mid-attempt) are let go, so their
   * deliveries go at once instead of when the leases would end. @default false
   */
  soleSender?: boolean;
  /** @default systemClock */
  clock?: Clock;
  /** @default Math.random */
  random?: () => number;
}

export interface WebhookDispatcher extends Pick<JobEvents, 'ended'> {
  /**
   * Picks up deliveries owed in the store (by a previous process, or by another live one): pending ones at their
   * next attempt, unstarted ones now; with `rescanMs`, again and again.
   */
  start(): Promise<void>;
  /** No new attempts; waits for the ones in flight (each bounded by its timeout). */
  stop(): Promise<void>;
}

const USER_AGENT = 'chunkscribe-webhooks/1';
const iso = (ms: number) => new Date(ms).toISOString();
const MAX_ERROR_CHARS = 300;

/**
 * POSTs `{type, timestamp, data: <job resource>}` to a job's callback_url when it completes or fails, signed per
 * Standard Webhooks, retried with exponential backoff. Every attempt's outcome is stored on the job before the
 * next is scheduled, so a restart resumes where it was (delivery is at least once: receivers dedupe on webhook-id).
 * Each attempt is made under a lease claimed in the store, so of the processes (hosts) sharing it only one sends
 * an event at a time; a process that dies mid-attempt stops renewing, and another one takes over when it ends.
 */
export function createWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const {
    store,
    describe,
    send,
    logger,
    secret,
    maxAttempts,
    retryBaseMs,
    retryMaxMs,
    onOutcome,
    holder,
    leaseMs = 30_000,
    rescanMs,
    soleSender = false,
    clock = systemClock,
    random = Math.random,
  } = options;
  const timers = new Map<string, DeadlineTimer>();
  const inFlight = new Set<Promise<void>>();
  /** Pending states being stored by `begin`, which the job's first attempt waits for. */
  const recording = new Map<string, Promise<void>>();
  let stopped = false;
  let rescan: DeadlineTimer | null = null;

  /** The attempt goes when the clock reaches dueAt (epoch ms), never before the next_attempt_at stored for it. */
  function schedule(jobId: string, dueAt: number): void {
    if (stopped || timers.has(jobId)) return;
    const timer = atDeadline(clock, dueAt, () => {
      timers.delete(jobId);
      const attempt = deliver(jobId).catch((err: unknown) => logger.error({ jobId, err }, 'webhook delivery crashed'));
      inFlight.add(attempt);
      void attempt.finally(() => inFlight.delete(attempt));
    });
    timers.set(jobId, timer);
  }

  async function payload(job: JobRecord): Promise<string> {
    // The delivery state inside the delivery would only describe the attempt before this one.
    const { webhook: _webhook, ...data } = await describe(job, clock.now());
    return JSON.stringify({ type: `job.${job.status}`, timestamp: new Date(clock.now()).toISOString(), data });
  }

  const leases = createDeliveryLeases({ store, holder, leaseMs, clock, logger });

  async function deliver(jobId: string): Promise<void> {
    await recording.get(jobId);
    const job = await leases.claimDue(jobId, (dueAt) => schedule(jobId, dueAt));
    if (!job?.request.callback_url) return;
    const log = logger.child({ jobId });
    const settle = (state: WebhookState) => leases.settle(jobId, state, log);
    const attempts = job.webhook.attempts + 1;
    if (secret === undefined) {
      await settle({
        status: 'failed',
        attempts,
        last_status_code: null,
        last_error: 'WEBHOOK_SECRET is not set',
        next_attempt_at: null,
      });
      log.warn('webhook not sent: WEBHOOK_SECRET is not set');
      onOutcome('unsigned');
      return;
    }
    const body = await payload(job);
    const headers = {
      ...signWebhook({ secret, id: `${job.id}.${job.status}`, timestampS: Math.floor(clock.now() / 1000), body }),
      'user-agent': USER_AGENT,
    };
    // Building the body read the store, and the process may have stalled since its claim: the lease is checked
    // (renewed if old) right before the request, so a process that lost it does not send what another now sends.
    if (!(await leases.stillHeld(jobId, log))) {
      // Owed still, unless the process that holds it now settles it: looked at again as any claim that lost.
      schedule(jobId, clock.now());
      return;
    }
    let statusCode: number | null = null;
    let error: string | null = null;
    let permanent = false;
    const release = leases.keep(jobId, log);
    try {
      statusCode = (await send({ url: job.request.callback_url, body, headers })).statusCode;
      if (statusCode < 200 || statusCode > 299) error = `the receiver answered HTTP ${statusCode}`;
    } catch (err) {
      permanent = err instanceof WebhookRefusedError;
      error = `${permanent ? 'refused: ' : ''}${errorMessage(err)}`.slice(0, MAX_ERROR_CHARS);
    } finally {
      release();
    }
    // Each outcome is told (log, metrics) only once stored: a process whose lease was taken over stores nothing.
    const answer = { attempts, last_status_code: statusCode, last_error: error };
    if (error === null) {
      if (await settle({ status: 'delivered', ...answer, next_attempt_at: null })) {
        log.info({ attempts, statusCode }, 'webhook delivered');
        onOutcome('delivered');
      }
      return;
    }
    if (permanent || attempts >= maxAttempts) {
      if (await settle({ status: 'failed', ...answer, next_attempt_at: null })) {
        log.warn({ attempts, statusCode, error }, 'webhook delivery given up');
        onOutcome(permanent ? 'refused' : 'failed');
      }
      return;
    }
    await retryLater(jobId, answer, log);
  }

  /** A failed attempt with attempts left: the next one is stored, then scheduled. */
  async function retryLater(
    jobId: string,
    answer: Pick<WebhookState, 'attempts' | 'last_status_code' | 'last_error'>,
    log: Logger,
  ): Promise<void> {
    const { attempts } = answer;
    // Jitter in the upper half only: a receiver that just failed is not called again at once.
    const ceilingMs = Math.min(retryMaxMs, retryBaseMs * 2 ** (attempts - 1));
    const delayMs = computeBackoffMs({
      attempt: attempts,
      baseMs: retryBaseMs,
      capMs: retryMaxMs,
      floorMs: ceilingMs / 2,
      random,
    });
    const nextAt = clock.now() + delayMs;
    const stored = await leases.settle(jobId, { status: 'pending', ...answer, next_attempt_at: iso(nextAt) }, log);
    if (!stored) return;
    const { last_status_code: statusCode, last_error: error } = answer;
    log.warn({ attempts, statusCode, error, delayMs }, 'webhook attempt failed; retrying');
    onOutcome('failed_attempt');
    schedule(jobId, nextAt);
  }

  /**
   * The delivery is owed from now on: its first attempt waits until the pending state is stored, since it reads it.
   * Stored only where no state is (another process may have begun it, or even delivered it, meanwhile).
   */
  function begin(job: JobRecord): void {
    if (job.status !== 'completed' && job.status !== 'failed') return;
    if (!job.request.callback_url) return;
    const owed = store
      .oweWebhook(job.id, {
        status: 'pending',
        attempts: 0,
        last_status_code: null,
        last_error: null,
        next_attempt_at: new Date(clock.now()).toISOString(),
      })
      .then(() => undefined)
      // Not stored: the attempt finds no pending state and sends nothing; the next backlog pass owes it.
      .catch((err: unknown) => logger.error({ jobId: job.id, err }, 'webhook delivery not recorded'))
      .finally(() => {
        if (recording.get(job.id) === owed) recording.delete(job.id);
      });
    recording.set(job.id, owed);
    schedule(job.id, clock.now());
  }

  async function pickUpBacklog(): Promise<void> {
    for (const job of await store.webhookBacklog()) {
      if (job.webhook?.status !== 'pending') begin(job);
      else {
        // A stored time that does not parse (NaN) is owed now rather than never.
        const dueAt = Date.parse(job.webhook.next_attempt_at ?? '');
        schedule(job.id, Number.isNaN(dueAt) ? clock.now() : dueAt);
      }
    }
  }

  /** The next backlog pass, re-armed after each one whatever it found (a store that failed is read again later). */
  function armRescan(every: number): void {
    if (stopped) return;
    rescan = atDeadline(clock, clock.now() + every, () => {
      void pickUpBacklog()
        .catch((err: unknown) => logger.warn({ err }, 'webhook backlog not read'))
        .finally(() => armRescan(every));
    });
  }

  return {
    ended: begin,
    async start() {
      if (soleSender) {
        const released = await store.releaseWebhookLeases(holder);
        if (released > 0) logger.info({ released }, 'let go of webhook leases held by an earlier run of this process');
      }
      await pickUpBacklog();
      if (rescanMs !== undefined) armRescan(rescanMs);
    },
    async stop() {
      stopped = true;
      rescan?.cancel();
      for (const timer of timers.values()) timer.cancel();
      timers.clear();
      await Promise.allSettled([...inFlight, ...recording.values()]);
    },
  };
}
