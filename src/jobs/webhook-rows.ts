import type { JobStore, WebhookClaim, WebhookLease } from './job-store.ts';
import type { JobRecord, WebhookState } from './types.ts';

/** The webhook deliveries' part of the store: each store keeps it in its own module, in its own SQL dialect. */
export type WebhookRows = Pick<
  JobStore,
  'webhookBacklog' | 'oweWebhook' | 'claimWebhook' | 'renewWebhook' | 'settleWebhook' | 'releaseWebhookLeases'
>;

/** A store whose webhook methods are its dialect's `WebhookRows`. */
export abstract class StoreWithWebhookRows implements WebhookRows {
  readonly #rows: WebhookRows;

  protected constructor(rows: WebhookRows) {
    this.#rows = rows;
  }

  webhookBacklog(): Promise<JobRecord[]> {
    return this.#rows.webhookBacklog();
  }

  oweWebhook(jobId: string, state: WebhookState): Promise<boolean> {
    return this.#rows.oweWebhook(jobId, state);
  }

  claimWebhook(jobId: string, lease: WebhookLease): Promise<WebhookClaim> {
    return this.#rows.claimWebhook(jobId, lease);
  }

  renewWebhook(jobId: string, holder: string, until: string): Promise<boolean> {
    return this.#rows.renewWebhook(jobId, holder, until);
  }

  settleWebhook(jobId: string, holder: string, state?: WebhookState): Promise<boolean> {
    return this.#rows.settleWebhook(jobId, holder, state);
  }

  releaseWebhookLeases(holder: string): Promise<number> {
    return this.#rows.releaseWebhookLeases(holder);
  }
}
