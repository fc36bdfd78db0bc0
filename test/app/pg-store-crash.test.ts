import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, tempDataDir, upload, waitForJob } from '../helper.ts';
import { blockingTransaction, startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';

/*
 * PostgreSQL killed (`pg_ctl stop -m immediate`, as a crash) while a running job's write is in flight, then started
 * again: the real service process, its job store on the cluster, the fake provider over HTTP.
 */
describe('the job store server dies under a running job (DATABASE_URL)', () => {
  let pg: TestPostgres;
  let fake: FakeOpenAI;
  const dirs: string[] = [];
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    pg = await startTestPostgres();
    fake = await startFakeOpenAI({ latencyMs: 200 });
  }, 120_000);
  afterAll(async () => {
    for (const service of services) await service.kill9();
    await fake?.close();
    pg?.up();
    await pg?.stop();
    for (const d of dirs) await removeDir(d);
  });

  it('the write in flight is sent again once the server is back: the job completes with its transcript', async () => {
    const url = pg.urlOf(await pg.createDatabase());
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const service = spawnService({
      DATA_DIR: dataDir,
      DATABASE_URL: url,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '10',
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
    });
    services.push(service);
    const base = await service.url;
    const created = await upload(base, speechFixture().mp3);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    // The job's row locked by another transaction: the runner's next write (whichever it is) waits on it.
    const blocker = await blockingTransaction(url, ['SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [created.body.id]]);
    try {
      await blocker.hold();
      await blocker.waitedOn();
      await pg.down();
      pg.up();
    } finally {
      await blocker.close();
    }
    const job = await waitForJob(base, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const transcript = await fetch(`${base}/v1/jobs/${job.id}/transcript?format=txt`);
    expect(transcript.status).toBe(200);
    expect((await transcript.text()).trim().length).toBeGreaterThan(0);
    expect(service.child.exitCode).toBeNull();
    expect(service.lines.some((line) => line.includes('job store connection ended mid-statement'))).toBe(true);
  });
});
