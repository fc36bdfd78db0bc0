import type { PgDb } from './pg-db.ts';
import type { WebhookRows } from './webhook-rows.ts';
import { JOB_READ_COLUMNS, rowToJob, unclaimed } from './store-rows.ts';

/** The webhook deliveries on the PostgreSQL store: what each job owes its callback URL, and the lease on each attempt. */
export function pgWebhookRows(db: PgDb, now: () => Date): WebhookRows {
  return {
    async webhookBacklog() {
      const rows = await db.query(
        `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('completed', 'failed')
           AND request_json::jsonb ->> 'callback_url' IS NOT NULL
           AND (webhook_json IS NULL OR webhook_json::jsonb ->> 'status' = 'pending') ORDER BY completed_at`,
      );
      return rows.map(rowToJob);
    },

    async oweWebhook(jobId, state) {
      const sql = 'UPDATE jobs SET webhook_json = $1, updated_at = $2 WHERE id = $3 AND webhook_json IS NULL';
      // Once (as every write here that answers whether it took): sent again after a commit whose answer was lost, it
      // would find its own write and answer false.
      return (await db.count(sql, [JSON.stringify(state), now().toISOString(), jobId], 'once')) > 0;
    },

    async claimWebhook(jobId, lease) {
      // One UPDATE: a second claimer blocks on the row until the first commits, then finds its lease live (READ
      // COMMITTED re-checks the WHERE on the row as committed), so exactly one of them gets it.
      const [row] = await db.query(
        `UPDATE jobs SET webhook_holder = $2, webhook_lease_until = $3
           WHERE id = $1 AND webhook_json::jsonb ->> 'status' = 'pending'
             AND (webhook_lease_until IS NULL OR webhook_lease_until <= $4)
           RETURNING ${JOB_READ_COLUMNS}`,
        [jobId, lease.holder, lease.until, lease.now],
        undefined,
        'once',
      );
      if (row) return { job: rowToJob(row), held: true, heldUntil: null };
      const [other] = await db.query(`SELECT ${JOB_READ_COLUMNS}, webhook_lease_until FROM jobs WHERE id = $1`, [
        jobId,
      ]);
      return unclaimed(other);
    },

    async renewWebhook(jobId, holder, until) {
      const sql = 'UPDATE jobs SET webhook_lease_until = $1 WHERE id = $2 AND webhook_holder = $3';
      return (await db.count(sql, [until, jobId, holder], 'idempotent')) > 0;
    },

    async settleWebhook(jobId, holder, state) {
      const sets = ['webhook_holder = NULL', 'webhook_lease_until = NULL'];
      const params: unknown[] = [jobId, holder];
      if (state) {
        sets.push('webhook_json = $3', 'updated_at = $4');
        params.push(JSON.stringify(state), now().toISOString());
      }
      const sql = `UPDATE jobs SET ${sets.join(', ')} WHERE id = $1 AND webhook_holder = $2`;
      return (await db.count(sql, params, 'once')) > 0;
    },

    async releaseWebhookLeases(holder) {
      return db.count(
        'UPDATE jobs SET webhook_holder = NULL, webhook_lease_until = NULL WHERE webhook_holder IS NOT NULL AND webhook_holder <> $1',
        [holder],
        'idempotent',
      );
    },
  };
}
