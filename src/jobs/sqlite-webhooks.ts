import type { SQLInputValue } from 'node:sqlite';
import type { SqliteDb } from './sqlite-db.ts';
import { JOB_READ_COLUMNS, rowToJob, unclaimed, type Row } from './store-rows.ts';
import type { WebhookRows } from './webhook-rows.ts';

/** The webhook deliveries on the SQLite store: what each job owes its callback URL, and the lease on each attempt. */
export function sqliteWebhookRows(db: SqliteDb, now: () => Date): WebhookRows {
  return {
    async webhookBacklog() {
      const rows = db
        .read(
          `SELECT ${JOB_READ_COLUMNS} FROM jobs WHERE status IN ('completed', 'failed') AND json_extract(request_json, '$.callback_url') IS NOT NULL
             AND (webhook_json IS NULL OR json_extract(webhook_json, '$.status') = 'pending') ORDER BY completed_at`,
        )
        .all() as Row[];
      return rows.map(rowToJob);
    },

    async oweWebhook(jobId, state) {
      const sql = 'UPDATE jobs SET webhook_json = ?, updated_at = ? WHERE id = ? AND webhook_json IS NULL';
      return db.write(sql).run(JSON.stringify(state), now().toISOString(), jobId) > 0;
    },

    async claimWebhook(jobId, lease) {
      // One statement: SQLite's write lock makes the check and the claim one step for every process on the file.
      const row = db
        .write(
          `UPDATE jobs SET webhook_holder = ?, webhook_lease_until = ?
             WHERE id = ? AND json_extract(webhook_json, '$.status') = 'pending'
               AND (webhook_lease_until IS NULL OR webhook_lease_until <= ?)
             RETURNING ${JOB_READ_COLUMNS}`,
        )
        .get(lease.holder, lease.until, jobId, lease.now);
      if (row) return { job: rowToJob(row), held: true, heldUntil: null };
      const other = db.read(`SELECT ${JOB_READ_COLUMNS}, webhook_lease_until FROM jobs WHERE id = ?`).get(jobId) as
        Row | undefined;
      return unclaimed(other);
    },

    async renewWebhook(jobId, holder, until) {
      const sql = 'UPDATE jobs SET webhook_lease_until = ? WHERE id = ? AND webhook_holder = ?';
      return db.write(sql).run(until, jobId, holder) > 0;
    },

    async settleWebhook(jobId, holder, state) {
      const sets = ['webhook_holder = NULL', 'webhook_lease_until = NULL'];
      const params: SQLInputValue[] = [];
      if (state) {
        sets.push('webhook_json = ?', 'updated_at = ?');
        params.push(JSON.stringify(state), now().toISOString());
      }
      const sql = `UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND webhook_holder = ?`;
      return db.write(sql).run(...params, jobId, holder) > 0;
    },

    async releaseWebhookLeases(holder) {
      return db
        .write(
          'UPDATE jobs SET webhook_holder = NULL, webhook_lease_until = NULL WHERE webhook_holder IS NOT NULL AND webhook_holder != ?',
        )
        .run(holder);
    },
  };
}
