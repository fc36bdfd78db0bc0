import type { Logger } from 'pino';
import type { JobStore } from '../jobs/job-store.ts';
import type { JobRecord, WebhookState } from '../jobs/types.ts';
import type { Clock } from '../transcribe/backoff.ts';
import { atDeadline, type DeadlineTimer } from '../transcribe/deadline-timer.ts';

export interface DeliveryLeaseOptions {
  store: Pick<JobStore, 'claimWebhook' | 'renewWebhook' | 'settleWebhook'>;
  /** This process in the leases (host, pid, a random part): unique among the processes sharing the store. */
  holder: string;
  /** How long a claim lasts unless renewed (every third of it while an attempt runs). */
  leaseMs: number;
  clock: Clock;
  logger: Logger;
}

/** A job whose pending delivery this process now holds, due now. */
export type ClaimedJob = JobRecord & { webhook: WebhookState };

/** What the dispatcher asks of the store's leases: one attempt at a time per event, across every process. */
export interface DeliveryLeases {
  /**
   * The job when this process now holds its delivery and it is due; otherwise null, having told `later` when to
   * look again if the delivery is still owed (another holder's lease end, or its next attempt).
   */
  claimDue(jobId: string, later: (dueAt: number) => void): Promise<ClaimedJob | null>;
  /**
   * Right before the request: whether this process still holds the delivery. A lease claimed (or renewed) less
   * than a third of its length ago surely holds; an older one (the process stalled after its claim: a long pause,
   * SIGSTOP, a store that answered late) is renewed first, which the store grants only while this process is still
   * its holder: once another process has claimed it after the lease ran out, this one sends nothing.
   */
  stillHeld(jobId: string, log: Logger): Promise<boolean>;
  /** Renews the lease every third of its length until the returned function is called. */
  keep(jobId: string, log: Logger): () => void;
  /** Stores the attempt's outcome and lets go; false (nothing stored) when another process took the delivery over. */
  settle(jobId: string, state: WebhookState, log: Logger): Promise<boolean>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function createDeliveryLeases(options: DeliveryLeaseOptions): DeliveryLeases {
  const { store, holder, leaseMs, clock, logger } = options;
  /** When a pending delivery's next attempt is due; a stored time that does not parse (NaN) is owed now. */
  const dueAt = (state: WebhookState): number => {
    const at = Date.parse(state.next_attempt_at ?? '');
    return Number.isNaN(at) ? clock.now() : at;
  };

  /** When this process last claimed or renewed each lease it holds (its clock, as the store's lease ends are). */
  const heldSince = new Map<string, number>();
  const renew = async (jobId: string): Promise<boolean> => {
    const at = clock.now();
    const held = await store.renewWebhook(jobId, holder, iso(at + leaseMs));
    if (held) heldSince.set(jobId, at);
    return held;
  };

  return {
    async claimDue(jobId, later) {
      const claimedAt = clock.now();
      const claim = await store.claimWebhook(jobId, {
        holder,
        now: iso(claimedAt),
        until: iso(claimedAt + leaseMs),
      });
      if (claim.held) heldSince.set(jobId, claimedAt);
      const job = claim.job;
      // Deleted, delivered or given up meanwhile (here or on another host): nothing more to send.
      if (!job || !job.request.callback_url || job.webhook?.status !== 'pending') {
        heldSince.delete(jobId);
        if (claim.held) await store.settleWebhook(jobId, holder);
        return null;
      }
      const due = dueAt(job.webhook);
      if (!claim.held) {
        // Another live process is making an attempt: look again when its lease ends (then the stored state says
        // what is left; if that process died, the delivery is taken over).
        const until = Date.parse(claim.heldUntil ?? '');
        logger.debug({ jobId, heldUntil: claim.heldUntil }, 'webhook attempt held by another process');
        later(Math.max(due, Number.isNaN(until) ? clock.now() : until));
        return null;
      }
      if (due > clock.now()) {
        // Claimed when a lease ended, but its holder had stored a later attempt before letting go.
        heldSince.delete(jobId);
        await store.settleWebhook(jobId, holder);
        later(due);
        return null;
      }
      return { ...job, webhook: job.webhook };
    },

    async stillHeld(jobId, log) {
      const since = heldSince.get(jobId);
      if (since !== undefined && clock.now() - since < leaseMs / 3) return true;
      const held = await renew(jobId);
      if (held) return true;
      heldSince.delete(jobId);
      log.warn('webhook lease lost before its attempt (this process stalled past it): not sending');
      return false;
    },

    keep(jobId, log) {
      let timer: DeadlineTimer | null = null;
      let done = false;
      const arm = () => {
        timer = atDeadline(clock, clock.now() + leaseMs / 3, () => {
          void renew(jobId)
            .then((held) => held || log.warn('webhook lease lost mid-attempt: another process may send it again'))
            .catch((err: unknown) => log.warn({ err }, 'webhook lease not renewed'))
            .finally(() => done || arm());
        });
      };
      arm();
      return () => {
        done = true;
        timer?.cancel();
      };
    },

    async settle(jobId, state, log) {
      heldSince.delete(jobId);
      const held = await store.settleWebhook(jobId, holder, state);
      if (!held)
        log.warn({ attempts: state.attempts }, 'webhook outcome not stored: another process took the delivery over');
      return held;
    },
  };
}
