import { setTimeout } from 'node:timers/promises';
import { Client } from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgJobStore } from '../../src/jobs/pg-store.ts';
import { JOB_INSERT_COLUMNS, jobInsertValues } from '../../src/jobs/store-rows.ts';
import { jobRecord } from '../support/job-record.ts';
import { blockingTransaction, startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { startTcpRelay } from '../support/tcp-relay.ts';
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

  it('gives up on a server that stays down after restartWaitMs: SERVER_BUSY for the job store, the driver error its cause', async () => {
    const store = await PgJobStore.open({ url: pg.urlOf(await pg.createDatabase()), logger, restartWaitMs: 1_000 });
    try {
      await pg.down();
      await expect(store.getJob('job1')).rejects.toMatchObject({
        code: 'SERVER_BUSY',
        details: { resource: 'job_store' },
        cause: { code: 'ECONNREFUSED' },
      });
    } finally {
      pg.up();
      await store.close();
    }
  });

  it('sends an idempotent write again when the server dies under it, once it is back', async () => {
    const url = pg.urlOf(await pg.createDatabase());
    const store = await PgJobStore.open({ url, logger });
    const blocker = await blockingTransaction(url, ['SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', ['job1']]);
    try {
      await store.insertJob(jobRecord('job1', 'processing', null));
      await blocker.hold();
      const written = store.saveTranscript('job1', {
        job_id: 'job1',
        text: 'kept',
        language: 'en',
        duration_s: 1,
        segments: [],
      });
      void written.catch(() => undefined);
      await blocker.waitedOn();
      await pg.down();
      pg.up();
      await expect(written).resolves.toBeUndefined();
      expect((await store.getTranscript('job1'))?.text).toBe('kept');
    } finally {
      pg.up();
      await blocker.close();
      await store.close();
    }
  });

  it('never sends an insert again: the server dying under it fails it with SERVER_BUSY, and no row is left', async () => {
    const url = pg.urlOf(await pg.createDatabase());
    const store = await PgJobStore.open({ url, logger });
    // An uncommitted insert of the same id: the store's insert waits on it (the unique index) until the server dies.
    const blocker = await blockingTransaction(url, insertOf('job2'));
    try {
      await blocker.hold();
      const inserted = store.insertJob(jobRecord('job2', 'queued', null));
      void inserted.catch(() => undefined);
      await blocker.waitedOn();
      await pg.down();
      pg.up();
      await expect(inserted).rejects.toMatchObject({ code: 'SERVER_BUSY', details: { resource: 'job_store' } });
      expect(await store.getJob('job2')).toBeNull();
    } finally {
      pg.up();
      await blocker.close();
      await store.close();
    }
  });

  it('an insert whose connection ends after it committed answers as inserted: the row with its id is its own (128 random bits), not a refusal that leaves the job', async () => {
    const database = await pg.createDatabase();
    // The store talks through a relay the test holds: the insert reaches the server, its answer never comes back.
    const relay = await startTcpRelay(pg.port);
    const store = await PgJobStore.open({
      url: `postgres://chunkscribe@127.0.0.1:${relay.port}/${database}`,
      logger,
      restartWaitMs: 2_000,
    });
    const direct = new Client({ connectionString: pg.urlOf(database) });
    await direct.connect();
    try {
      // A connection in the pool, idle: the insert goes on it at once.
      await store.getJob('warm');
      relay.hold();
      const inserted = store.insertJob(jobRecord('job3', 'queued', null));
      void inserted.catch(() => undefined);
      await until(() => relay.heldChunks > 0, 'the insert to reach the relay');
      // The statement's messages leave in one go; the server's answer, later, is held.
      await setTimeout(100);
      relay.release();
      relay.hold();
      await until(
        async () => (await direct.query("SELECT 1 FROM jobs WHERE id = 'job3'")).rows.length === 1,
        'the insert to commit',
      );
      relay.cut();
      relay.mend();
      relay.release();
      await expect(inserted).resolves.toBeUndefined();
      expect((await store.getJob('job3'))?.status).toBe('queued');
    } finally {
      await direct.end();
      await store.close();
      await relay.close();
    }
  });
});

/** The store's own INSERT of a job row with this id, for a blocker to hold uncommitted. */
function insertOf(id: string): [string, unknown[]] {
  const values = jobInsertValues(jobRecord(id, 'queued', null), null);
  const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
  return [`INSERT INTO jobs (${JOB_INSERT_COLUMNS}) VALUES (${placeholders})`, values];
}
