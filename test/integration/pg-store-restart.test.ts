import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgJobStore } from '../../src/jobs/pg-store.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });

/**
 * PostgreSQL restarting (an upgrade, a failover, a crash) refuses connections for a few seconds. A job's write that
 * comes then must wait for it, not fail: a failed write fails the job, and its client pays for every chunk again.
 */
describe('the PostgreSQL store while the server restarts', () => {
  let pg: TestPostgres;

  beforeAll(async () => {
    pg = await startTestPostgres();
  });
  afterAll(async () => {
    pg.up();
    await pg.stop();
  });

  it('makes a write asked while the server is down once it is back, and reads after it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const store = await PgJobStore.open({ url: pg.urlOf(await pg.createDatabase()), logger });
    try {
      await store.insertJob(jobRecord('job1', 'processing', null));
      await pg.down();
      let settled = false;
      const write = store.updateJob('job1', { percent: 40 });
      void write.then(
        () => (settled = true),
        () => (settled = true),
      );
      const read = store.getJob('job1');
      void read.catch(() => undefined);
      await until(
        () => settled || lines.some((line) => line.includes('job store refused a connection')),
        'the write to meet the refused connection',
      );
      // Still waiting: not failed (its job would fail with it).
      expect(settled).toBe(false);
      pg.up();
      await expect(write).resolves.toBe(true);
      await expect(read).resolves.toMatchObject({ id: 'job1' });
      expect((await store.getJob('job1'))?.percent).toBe(40);
    } finally {
      pg.up();
      await store.close();
    }
  });

  it('gives up on a server that stays down after restartWaitMs, with the driver error', async () => {
    const store = await PgJobStore.open({ url: pg.urlOf(await pg.createDatabase()), logger, restartWaitMs: 1_000 });
    try {
      await pg.down();
      await expect(store.getJob('job1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      pg.up();
      await store.close();
    }
  });
});
