import { existsSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import { PgJobStore } from '../../src/jobs/pg-store.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, tempDataDir, upload, waitForJob, type Json } from '../helper.ts';
import { jobRecord } from '../support/job-record.ts';
import { until } from '../support/until.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';
import { expectError, expectNothingLeft } from './hostile-kit.ts';

/*
 * The service with DATABASE_URL set: the real HTTP server, pipeline and fake provider over HTTP, its job store a
 * throw-away PostgreSQL cluster. DATA_DIR then holds uploads and chunks only.
 */

const speech = speechFixture();
const logger = pino({ level: 'silent' });

describe('job store on PostgreSQL (DATABASE_URL)', () => {
  let pg: TestPostgres;
  let fake: FakeOpenAI;
  const dirs: string[] = [];
  /** Each test its own database: what one leaves cannot answer another's checks. */
  const database = async () => pg.urlOf(await pg.createDatabase());
  const env = (url: string, extra: Record<string, string> = {}) => ({
    DATABASE_URL: url,
    OPENAI_API_KEY: FAKE_OPENAI_KEY,
    OPENAI_BASE_URL: fake.url,
    RATE_LIMIT_RPM: '6000',
    ...extra,
  });

  beforeAll(async () => {
    pg = await startTestPostgres();
    fake = await startFakeOpenAI({ latencyMs: 200 });
  }, 120_000);
  afterAll(async () => {
    await fake?.close();
    await pg?.stop();
    for (const d of dirs) await removeDir(d);
  });

  it('takes an upload to a completed job and its transcript, with the rows in PostgreSQL and no SQLite file', async () => {
    const url = await database();
    const server = await startServer(env(url));
    dirs.push(server.dataDir);
    const reader = await PgJobStore.open({ url, logger });
    try {
      const created = await upload(server.url, speech.mp3);
      expect(created.status).toBe(202);
      const job = await waitForJob(server.url, created.body.id);
      expect(job.status).toBe('completed');
      const transcript = await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=txt`);
      expect(transcript.status).toBe(200);
      const text = await transcript.text();
      expect(text.length).toBeGreaterThan(0);

      expect((await reader.getJob(job.id))?.status).toBe('completed');
      const words = (t: string | undefined) => t?.split(/\s+/).filter(Boolean);
      expect(words((await reader.getTranscript(job.id))?.text)).toEqual(words(text));
      expect((await reader.listChunks(job.id)).every((c) => c.status === 'done' && c.result !== null)).toBe(true);
      expect(existsSync(path.join(server.dataDir, 'jobs.sqlite'))).toBe(false);
      const ready = await getJson<{ components: Record<string, Json> }>(`${server.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.body.components.store).toEqual({ status: 'ok', detail: 'postgresql answers' });

      const deleted = await fetch(`${server.url}/v1/jobs/${job.id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
      expect(await reader.getJob(job.id)).toBeNull();
      expect(await reader.listChunks(job.id)).toEqual([]);
    } finally {
      await reader.close();
      await server.close();
    }
  });

  it('finishes a job interrupted by a stop without sending a stored chunk again', async () => {
    const url = await database();
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    // The first chunk is answered, the second never (the stop abandons it, as a crash would); after that all are.
    const provider = await startFakeOpenAI({ faults: (i) => (i === 1 ? 'stall' : undefined) });
    const settings = {
      ...env(url, { CHUNK_SECONDS: '12', TRANSCRIBE_CONCURRENCY: '1', SHUTDOWN_TIMEOUT_MS: '100' }),
      OPENAI_BASE_URL: provider.url,
    };
    try {
      const first = await startServer(settings, dataDir);
      const created = await upload(first.url, speech.mp3);
      expect(created.status).toBe(202);
      const sent = () => provider.requests.filter((r) => r.path === '/v1/audio/transcriptions');
      // One at a time: the second goes once the first one's result is stored.
      await until(() => sent().length >= 2, 'the second chunk to be with the provider');
      await first.close();
      const answered = () =>
        sent()
          .filter((r) => r.status === 200)
          .map((r) => r.sha1);
      expect(answered()).toHaveLength(1);

      const second = await startServer(settings, dataDir);
      try {
        const job = await waitForJob(second.url, created.body.id);
        expect(job.status).toBe('completed');
        const all = answered();
        // Every chunk answered once over both runs: the one stored before the stop was not sent again.
        expect(new Set(all).size).toBe(all.length);
        expect(all.length).toBe(job.progress.chunks_total);
        expect(sent()).toHaveLength(job.progress.chunks_total + 1);
      } finally {
        await second.close();
      }
    } finally {
      await provider.close();
    }
  });

  it('answers a repeated Idempotency-Key with its job and refuses its reuse, keeping nothing of the refused upload', async () => {
    const server = await startServer(env(await database()));
    dirs.push(server.dataDir);
    try {
      const key = { 'idempotency-key': 'pg-same' };
      const first = await upload(server.url, speech.mp3, { language: 'en' }, key);
      expect(first.status).toBe(202);
      const again = await upload(server.url, speech.mp3, { language: 'en' }, key);
      expect(again.status).toBe(202);
      expect(again.body.id).toBe(first.body.id);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expectError(await upload(server.url, speech.mp3, { language: 'fr' }, key), 422, 'IDEMPOTENCY_KEY_REUSED');
      const done = await waitForJob(server.url, first.body.id);
      expect(done.status).toBe('completed');
      await expectNothingLeft(server, [first.body.id]);
    } finally {
      await server.close();
    }
  });

  it('shows at once what another process wrote, while it serves repeated polls of the job', async () => {
    const url = await database();
    const server = await startServer(env(url));
    dirs.push(server.dataDir);
    // Another host's store: the service never wrote this job, and learns of every change only through the database.
    const other = await PgJobStore.open({ url, logger });
    const poll = async () => (await getJson<Json>(`${server.url}/v1/jobs/${id}`)).body;
    const id = newJobId();
    try {
      await other.insertJob({ ...jobRecord(id, 'processing', null), stage: 'transcribing', chunksTotal: 2 });
      await other.upsertChunk(id, 0, 0, 0.5);
      await other.upsertChunk(id, 1, 0.5, 0.5);
      const first = await poll();
      expect(first).toMatchObject({ status: 'processing', progress: { chunks_done: 0 } });
      expect(await poll()).toEqual(first);

      await other.updateChunk(id, 0, {
        status: 'done',
        result: { text: 'one', language: 'en', segments: [], timing: 'chunk' },
      });
      expect(await poll()).toMatchObject({ progress: { chunks_done: 1 } });
      await other.updateChunk(id, 1, { status: 'failed', errorCode: 'CHUNK_FAILED', errorMessage: 'x' });
      expect(await poll()).toMatchObject({ progress: { chunks_done: 1, chunks_failed: 1 } });
      await other.updateJob(id, { status: 'failed', stage: null, errorCode: 'CHUNK_FAILED', errorMessage: 'x' });
      expect(await poll()).toMatchObject({ status: 'failed', error: { code: 'CHUNK_FAILED' } });
      await other.deleteJob(id);
      expect((await getJson(`${server.url}/v1/jobs/${id}`)).status).toBe(404);
    } finally {
      await other.close();
      await server.close();
    }
  });
});
