import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import type { JobEvents } from '../jobs/events.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { JobRecord, WebhookState } from '../jobs/types.ts';
import { computeBackoffMs, systemClock, type Clock } from '../transcribe/backoff.ts';
import { atDeadline, type DeadlineTimer } from '../transcribe/deadline-timer.ts';
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
  store: Pick<JobStore, 'getJob' | 'updateJob' | 'webhookBacklog'>;
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
  /** @default systemClock */
  clock?: Clock;
  /** @default Math.random */
  random?: () => number;
}

export interface WebhookDispatcher extends Pick<JobEvents, 'ended'> {
  /** Picks up deliveries a previous process owed: pending ones at their next attempt, unstarted ones now. */
  start(): Promise<void>;
  /** No new attempts; waits for the ones in flight (each bounded by its timeout). */
  stop(): Promise<void>;
}

const USER_AGENT = 'chunkscribe-webhooks/1';
const MAX_ERROR_CHARS = 300;

/**
 * POSTs `{type, timestamp, data: <job resource>}` to a job's callback_url when it completes or fails, signed per
 * Standard Webhooks, retried with exponential backoff. Every attempt's outcome is stored on the job before the
 * next is scheduled, so a restart resumes where it was (delivery is at least once: receivers dedupe on webhook-id).
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
    clock = systemClock,
    random = Math.random,
  } = options;
  const timers = new Map<string, DeadlineTimer>();
  const inFlight = new Set<Promise<void>>();
  /** Pending states being stored by `begin`, which the job's first attempt waits for. */
  const recording = new Map<string, Promise<void>>();
  let stopped = false;

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

  async function record(jobId: string, state: WebhookState): Promise<void> {
    await store.updateJob(jobId, { webhook: state });
  }

  async function payload(job: JobRecord): Promise<string> {
    // The delivery state inside the delivery would only describe the attempt before this one.
    const { webhook: _webhook, ...data } = await describe(job, clock.now());
    return JSON.stringify({ type: `job.${job.status}`, timestamp: new Date(clock.now()).toISOString(), data });
  }

  async function deliver(jobId: string): Promise<void> {
    await recording.get(jobId);
    const job = await store.getJob(jobId);
    // Deleted meanwhile: nothing to tell anyone about.
    if (!job || !job.request.callback_url || job.webhook?.status !== 'pending') return;
    const log = logger.child({ jobId });
    const attempts = job.webhook.attempts + 1;
    if (secret === undefined) {
      await record(jobId, {
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
    let statusCode: number | null = null;
    let error: string | null = null;
    let permanent = false;
    try {
      statusCode = (await send({ url: job.request.callback_url, body, headers })).statusCode;
      if (statusCode < 200 || statusCode > 299) error = `the receiver answered HTTP ${statusCode}`;
    } catch (err) {
      permanent = err instanceof WebhookRefusedError;
      error = `${permanent ? 'refused: ' : ''}${errorMessage(err)}`.slice(0, MAX_ERROR_CHARS);
    }
    if (error === null) {
      await record(jobId, {
        status: 'delivered',
        attempts,
        last_status_code: statusCode,
        last_error: null,
        next_attempt_at: null,
      });
      log.info({ attempts, statusCode }, 'webhook delivered');
      onOutcome('delivered');
      return;
    }
    if (permanent || attempts >= maxAttempts) {
      await record(jobId, {
        status: 'failed',
        attempts,
        last_status_code: statusCode,
        last_error: error,
        next_attempt_at: null,
      });
      log.warn({ attempts, statusCode, error }, 'webhook delivery given up');
      onOutcome(permanent ? 'refused' : 'failed');
      return;
    }
    // Jitter in the upper half only: a receiver that just failed is not called again at once.
    const ceilingMs = Math.min(retryMaxMs, retryBaseMs * 2 ** (attempts - 1));
    const delayMs = computeBackoffMs({
      attempt: attempts,
      baseMs: retryBaseMs,
      capMs: retryMaxMs,
      floorMs: ceilingMs / 2,
      random,
    });
    const dueAt = clock.now() + delayMs;
    await record(jobId, {
      status: 'pending',
      attempts,
      last_status_code: statusCode,
      last_error: error,
      next_attempt_at: new Date(dueAt).toISOString(),
    });
    log.warn({ attempts, statusCode, error, delayMs }, 'webhook attempt failed; retrying');
    onOutcome('failed_attempt');
    schedule(jobId, dueAt);
  }

  /** The delivery is owed from now on: its first attempt waits until the pending state is stored, since it reads it. */
  function begin(job: JobRecord): void {
    if (job.status !== 'completed' && job.status !== 'failed') return;
    if (!job.request.callback_url) return;
    const owed = record(job.id, {
      status: 'pending',
      attempts: 0,
      last_status_code: null,
      last_error: null,
      next_attempt_at: new Date(clock.now()).toISOString(),
    })
      // Not stored: the attempt finds no pending state and sends nothing; the next start's backlog pass owes it.
      .catch((err: unknown) => logger.error({ jobId: job.id, err }, 'webhook delivery not recorded'))
      .finally(() => {
        if (recording.get(job.id) === owed) recording.delete(job.id);
      });
    recording.set(job.id, owed);
    schedule(job.id, clock.now());
  }

  return {
    ended: begin,
    async start() {
      for (const job of await store.webhookBacklog()) {
        if (job.webhook?.status !== 'pending') begin(job);
        else {
          // A stored time that does not parse (NaN) is owed now rather than never.
          const dueAt = Date.parse(job.webhook.next_attempt_at ?? '');
          schedule(job.id, Number.isNaN(dueAt) ? clock.now() : dueAt);
        }
      }
    },
    async stop() {
      stopped = true;
      for (const timer of timers.values()) timer.cancel();
      timers.clear();
      await Promise.allSettled([...inFlight, ...recording.values()]);
    },
  };
}
