import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { newJobId } from '../../src/jobs/ids.ts';
import { PgJobStore } from '../../src/jobs/pg-store.ts';
import type { WebhookState } from '../../src/jobs/types.ts';
import { listenApp, removeDir, tempDataDir } from '../helper.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { until } from '../support/until.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

/*
 * Two services (two hosts: each its own DATA_DIR) on one PostgreSQL share the webhook deliveries still owed in
 * it. Each delivery is claimed by one of them at a time, so a receiver gets every event once, whichever service
 * starts first and however long the receiver takes to answer.
 */

const silent = pino({ level: 'silent' });

describe('webhook deliveries shared by two services on one PostgreSQL', () => {
  let pg: TestPostgres;
  const dirs: string[] = [];

  beforeAll(async () => {
    pg = await startTestPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
    for (const d of dirs) await removeDir(d);
  });

  /** A service on `url` with its own DATA_DIR; `lines` collects its log (debug) as JSON objects. */
  async function startHost(url: string, secret: string, lines: Array<Record<string, unknown>>) {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const config = loadConfig({
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: url,
      WEBHOOK_SECRET: secret,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
    });
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    return listenApp(config, logger);
  }

  it('sends each pending event once while the other service holds it, with one webhook-id per event', async () => {
    const url = pg.urlOf(await pg.createDatabase());
    const receiver = await startWebhookReceiver();
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const store = await PgJobStore.open({ url, logger: silent });
    const ids: string[] = [];
    // Owed by a host that stopped: half retried after a failed attempt, half never started.
    const pending: WebhookState = {
      status: 'pending',
      attempts: 1,
      last_status_code: 500,
      last_error: 'the receiver answered HTTP 500',
      next_attempt_at: new Date(Date.now() - 1000).toISOString(),
    };
    for (let i = 0; i < 6; i++) {
      const id = newJobId();
      const job = jobRecord(id, i % 2 ? 'failed' : 'completed', new Date(Date.now() - 60_000).toISOString());
      await store.insertJob({ ...job, request: { ...job.request, callback_url: `${receiver.url}/hook/${i}` } });
      if (i < 3) await store.updateJob(id, { webhook: pending });
      ids.push(id);
    }
    const events = (await Promise.all(ids.map((id) => store.getJob(id)))).map((j) => `${j?.id}.${j?.status}`);
    const logA: Array<Record<string, unknown>> = [];
    const logB: Array<Record<string, unknown>> = [];
    const hosts: Array<Awaited<ReturnType<typeof startHost>>> = [];
    receiver.hold();
    try {
      hosts.push(await startHost(url, secret, logA));
      // Host A is sending all six; none is answered yet.
      await receiver.waitFor(ids.length);
      hosts.push(await startHost(url, secret, logB));
      const heldByOther = () =>
        new Set(logB.filter((l) => l.msg === 'webhook attempt held by another process').map((l) => l.jobId));
      // Until B has tried every one, or sent one a second time (the failure this test is for).
      await until(
        () => ids.every((id) => heldByOther().has(id)) || receiver.received.length > ids.length,
        'host B to find every delivery held by host A',
      );
      expect(receiver.received.map((r) => r.headers['webhook-id']).sort()).toEqual([...events].sort());

      receiver.release();
      await until(
        async () =>
          (await Promise.all(ids.map((id) => store.getJob(id)))).every((j) => j?.webhook?.status === 'delivered'),
        'every delivery to be stored as delivered',
      );
      // Neither host opened a SQLite file on its DATA_DIR (which may be a network volume).
      for (const dir of dirs)
        expect(readdirSync(dir, { recursive: true }).filter((f) => /sqlite/.test(String(f)))).toEqual([]);
      const delivered = await Promise.all(ids.map((id) => store.getJob(id)));
      expect(delivered.map((j) => j?.webhook?.attempts)).toEqual([2, 2, 2, 1, 1, 1]);
      expect(logA.filter((l) => l.msg === 'webhook delivered')).toHaveLength(ids.length);
    } finally {
      receiver.release();
      for (const host of hosts) await host.app.close();
      await store.close();
      await receiver.close();
    }
    // Both hosts are closed: whatever either would still send has been sent. Each event exactly once.
    expect(receiver.received.map((r) => r.headers['webhook-id']).sort()).toEqual([...events].sort());
    expect(logB.filter((l) => l.msg === 'webhook delivered')).toEqual([]);
  });
});
