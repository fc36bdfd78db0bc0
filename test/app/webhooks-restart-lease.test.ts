import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { getJson, removeDir, tempDataDir } from '../helper.ts';
import { jobRecord } from '../support/job-record.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

/*
 * One process (no REDIS_URL, SQLite in DATA_DIR) killed while a webhook attempt is in flight leaves its 30 s lease
 * on the delivery in the store. The next life of the service holds the DATA_DIR lock: nobody else can be sending,
 * so it lets that lease go and sends at once, instead of waiting for the lease of a process that is dead.
 */

function leaseOf(dataDir: string, jobId: string): { holder: string | null; until: string | null } {
  const db = new DatabaseSync(path.join(dataDir, 'jobs.sqlite'), { readOnly: true });
  try {
    const row = db.prepare('SELECT webhook_holder, webhook_lease_until FROM jobs WHERE id = ?').get(jobId) as {
      webhook_holder: string | null;
      webhook_lease_until: string | null;
    };
    return { holder: row.webhook_holder, until: row.webhook_lease_until };
  } finally {
    db.close();
  }
}

describe('webhooks across a kill -9 and restart of the one process', () => {
  let receiver: WebhookReceiver;
  let dataDir: string;
  const procs: ServiceProcess[] = [];
  const start = () => {
    const proc = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      WEBHOOK_SECRET: 'whsec_dGVzdC1zZWNyZXQtZm9yLXJlc3RhcnQtbGVhc2U=',
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    procs.push(proc);
    return proc;
  };

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    dataDir = await tempDataDir();
  });
  afterAll(async () => {
    for (const p of procs) await p.kill9();
    await receiver?.close();
    if (dataDir) await removeDir(dataDir);
  });

  it("sends a delivery the killed process held at once, not when the dead process's lease ends", async () => {
    // A job that ended with its callback owed: the service sends it at start.
    const jobId = newJobId();
    const store = new SqliteJobStore({ file: path.join(dataDir, 'jobs.sqlite') });
    const now = new Date().toISOString();
    const base = jobRecord(jobId, 'completed', now);
    await store.insertJob({ ...base, request: { ...base.request, callback_url: `${receiver.url}/hook` } });
    await store.close();

    receiver.hold();
    const first = start();
    await first.url;
    await until(() => receiver.received.length === 1, 'the first attempt to reach the receiver');
    const held = leaseOf(dataDir, jobId);
    expect(held.holder).not.toBeNull();
    // Killed mid-attempt: its lease stays in the store until it would end.
    await first.kill9();

    const second = start();
    const url = await second.url;
    await until(() => receiver.received.length === 2, 'the delivery to be sent again by the next process');
    const sentAgainAt = Date.now();
    // Sent while the dead process's lease would still have held the delivery back.
    expect(sentAgainAt).toBeLessThan(Date.parse(held.until!));
    expect(second.lines.some((l) => l.includes('let go of webhook leases held by an earlier run'))).toBe(true);
    // The same event, at least once: the receiver tells the two apart by nothing but their arrival.
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([`${jobId}.completed`, `${jobId}.completed`]);
    receiver.release();
    await until(
      async () =>
        (await getJson<{ webhook: { status: string } | null }>(`${url}/v1/jobs/${jobId}`)).body.webhook?.status ===
        'delivered',
      'the delivery to be stored as delivered',
    );
    expect(leaseOf(dataDir, jobId)).toEqual({ holder: null, until: null });
  });
});
