import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { GENERATED_DIR, speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  pollJob,
  removeDir,
  startServer,
  tempDataDir,
  upload,
  waitForJob,
  type TestServer,
} from '../helper.ts';
import { newJobId } from '../../src/jobs/ids.ts';
import type { ServiceOverrides } from '../../src/service/wiring.ts';
import { createS3ObjectStore } from '../../src/storage/object-store.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3, type S3Request, type TestS3 } from '../support/s3-server.ts';
import { until } from '../support/until.ts';
import { expectError, ffmpeg, listedJobIds } from './hostile-kit.ts';

const uploadKey = (id: string) => `cs/jobs/${id}/upload`;

/** The speech looped to 62 s of 44.1 kHz stereo PCM: 10.9 MB, two parts of the object store's 8 MiB. */
function largeWav(): string {
  const file = path.join(GENERATED_DIR, 'speech-2x-stereo.wav');
  if (!existsSync(file)) {
    ffmpeg(['-stream_loop', '1', '-i', speechFixture().wav, '-ar', '44100', '-ac', '2', '-c:a', 'pcm_s16le', file]);
  }
  return file;
}

describe('uploads on an S3-compatible object store (STORAGE_URL)', () => {
  let s3: TestS3;
  let fake: FakeOpenAI;
  const dirs: string[] = [];
  const servers: TestServer[] = [];
  let env: Record<string, string>;

  const start = async (over: Record<string, string> = {}, dataDir?: string, overrides: ServiceOverrides = {}) => {
    const server = await startServer({ ...env, ...over }, dataDir, overrides);
    servers.push(server);
    dirs.push(server.dataDir);
    return server;
  };

  beforeAll(async () => {
    s3 = await startTestS3();
    fake = await startFakeOpenAI({ latencyMs: 200 });
    env = {
      ...s3Env(s3),
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '12',
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
      SHUTDOWN_TIMEOUT_MS: '100',
      // s3rver and the fake provider run on this process's event loop: their work must not read as the service's
      // overload (a refusal for event-loop delay is pressure.test.ts's subject).
      PRESSURE_EVENT_LOOP_DELAY_MS: '0',
    };
  });
  beforeEach(() => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    s3.failWhen(null);
    s3.holdAnswers(null);
  });
  afterAll(async () => {
    for (const server of servers) await server.close();
    vi.unstubAllEnvs();
    await fake?.close();
    await s3?.close();
    for (const d of dirs) await removeDir(d);
  });

  it('puts the upload before answering 202, completes the job, keeps the object for UPLOAD_RETENTION_HOURS and deletes it with the job', async () => {
    const server = await start({ UPLOAD_RETENTION_HOURS: '1' });
    const created = await upload(server.url, speechFixture().mp3);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    // Durable before reported: the object is there when the client hears 202.
    expect(await s3.objects()).toContain(uploadKey(created.body.id));
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect(await s3.objects()).toEqual([uploadKey(created.body.id)]);
    // The host's copy is only scratch: it goes when the job ends, retention or not.
    await until(async () => (await jobFiles(server.dataDir)).length === 0, 'the local copy to be removed');

    // The probe must answer within 2 s; on a loaded machine the first one may not, so the test waits for an answer.
    await until(async () => {
      const ready = await getJson<{ components: Record<string, { status: string }> }>(`${server.url}/health/ready`);
      return ready.body.components.object_store?.status === 'ok';
    }, 'the object_store component of /health/ready to be ok');

    const deleted = await fetch(`${server.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' });
    expect(deleted.status, await deleted.text()).toBe(204);
    expect(await s3.objects()).toEqual([]);
  });

  it('a process with an empty scratch directory fetches the upload from the bucket and finishes the job', async () => {
    const dataDir = await tempDataDir();
    // Each start also asks GET /models: only transcriptions count.
    const transcriptions = () => fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const sentEarlier = transcriptions().length;
    const first = await start({}, dataDir);
    const created = await upload(first.url, speechFixture().mp3);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    await pollJob(
      first.url,
      created.body.id,
      (job) => job.progress.chunks_done >= 1,
      'one chunk done before the stop',
      {
        everyMs: 50,
      },
    );
    await first.close();
    // What another host would have: the job store, not one file of the job.
    await rm(path.join(dataDir, 'jobs'), { recursive: true, force: true });
    const getsBefore = s3.requests.filter(
      (r) => r.method === 'GET' && r.url.includes(uploadKey(created.body.id)),
    ).length;
    const sentBefore = transcriptions().length;

    const second = await start({}, dataDir);
    const job = await waitForJob(second.url, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const gets = s3.requests.filter((r) => r.method === 'GET' && r.url.includes(uploadKey(created.body.id)));
    expect(gets.length).toBe(getsBefore + 1);
    // Only what had no stored result went to the provider again.
    const answered = transcriptions()
      .slice(sentEarlier)
      .filter((r) => r.status === 200)
      .map((r) => r.sha1);
    expect(new Set(answered).size).toBe(answered.length);
    expect(transcriptions().length - sentBefore).toBeLessThan(job.progress.chunks_total);
    // UPLOAD_RETENTION_HOURS=0: the object goes when the job ends, and so do the local files.
    await until(async () => (await s3.objects()).length === 0, 'the object to be deleted when the job ended');
    await until(async () => (await jobFiles(dataDir)).length === 0, 'the local copy to be removed');
  });

  it('the retention sweep deletes an upload kept past UPLOAD_RETENTION_HOURS', async () => {
    const dataDir = await tempDataDir();
    const first = await start({ UPLOAD_RETENTION_HOURS: '1' }, dataDir);
    const created = await upload(first.url, speechFixture().mp3);
    const job = await waitForJob(first.url, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    await first.close();
    expect(await s3.objects()).toEqual([uploadKey(created.body.id)]);
    // Restarted with a retention of 0.36 s, which has run out once that much time has passed since the job ended.
    const endedMs = Date.parse(String(job.completed_at));
    await until(() => Date.now() - endedMs > 500, 'the shorter retention to run out');
    await start({ UPLOAD_RETENTION_HOURS: '0.0001' }, dataDir);
    // The start-up sweep (the same pass the periodic cleanup runs) removes it.
    expect(await s3.objects()).toEqual([]);
  });

  it('a put slower than the orphan grace: its object, dated at the put start as S3 does, is kept until its row is in', async () => {
    const graceMs = 10_000;
    // A prefix of its own: its cleanup passes (every second) see no other test's objects, nor others its own.
    const prefix = 'slow/';
    const server = await start(
      { ...s3Env(s3, prefix), UPLOAD_RETENTION_HOURS: '1', CLEANUP_INTERVAL_S: '1' },
      undefined,
      { orphanObjectGraceMs: graceMs },
    );
    const from = s3.requests.length;
    const started = performance.now();
    const isList = (r: S3Request) => r.method === 'GET' && r.url.includes('list-type=2') && r.url.includes('slow');
    const answers: Array<Promise<unknown>> = [];
    s3.holdAnswers((r) => {
      const complete = r.method === 'POST' && r.url.includes('uploadId=');
      if (!complete && !(r.method === 'PUT' && r.url.includes('partNumber='))) return null;
      // The parts go up slowly: the object appears older than the grace (S3 dates it at the upload's initiation).
      const answer = complete
        ? passesWhileHeld(s3, isList)
        : until(() => performance.now() - started > graceMs + 1_000, 'the put to take longer than the grace');
      answers.push(answer);
      return answer;
    });
    const created = await upload(server.url, largeWav());
    await Promise.all(answers);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const deletes = s3.requests.slice(from).filter((r) => r.method === 'POST' && r.url.includes('delete'));
    expect(deletes).toEqual([]);
    const key = `${prefix}jobs/${created.body.id}/upload`;
    expect(await s3.objects()).toEqual([key]);
    const deleted = await fetch(`${server.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(await s3.objects()).toEqual([]);
  });

  it('an orphan object goes at a start once its put surely ended the grace ago: a service restarted within the grace', async () => {
    const graceMs = 2_000;
    const putMs = 1_000;
    // A prefix of its own: no other test's objects are listed with these.
    const prefix = 'restarts/';
    // One DATA_DIR (and so one job store) for every start.
    const dataDir = await tempDataDir();
    const restart = () =>
      start({ ...s3Env(s3, prefix), UPLOAD_RETENTION_HOURS: '1' }, dataDir, {
        orphanObjectGraceMs: graceMs,
        putLimitMs: () => putMs,
      });
    const first = await restart();
    const created = await upload(first.url, speechFixture().mp3);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    // An upload whose host died between its put and its row: an object without a row.
    const orphan = newJobId();
    const objects = createS3ObjectStore(first.config.objectStore ?? expect.fail('STORAGE_URL'));
    await objects.putFile(`jobs/${orphan}/upload`, speechFixture().mp3);
    let datedMs: number | null = null;
    for await (const object of objects.list(`jobs/${orphan}/`)) datedMs = object.modifiedMs;
    objects.close();
    if (datedMs === null) expect.fail('s3rver gives objects a date');
    const keys = [created.body.id, orphan].map((id) => `${prefix}jobs/${id}/upload`).sort();
    expect(await s3.objects()).toEqual(keys);
    await first.close();
    // Restarted before the grace has passed since the put: the start's cleanup pass keeps it (its row may be coming).
    const second = await restart();
    expect(await s3.objects()).toEqual(keys);
    await second.close();
    // Restarted once its put (dated in whole seconds) surely ended the grace ago: none of these processes listed it
    // for the grace, and the start's pass deletes it all the same; the job's object stays.
    const goneAfter = datedMs + 1_000 + putMs + graceMs;
    await until(() => Date.now() > goneAfter, 'the grace to pass after the put');
    const third = await restart();
    expect(await s3.objects()).toEqual([`${prefix}jobs/${created.body.id}/upload`]);
    expect((await waitForJob(third.url, created.body.id)).status).toBe('completed');
    expect((await fetch(`${third.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await s3.objects()).toEqual([]);
  });

  it('a store failing mid-upload: 503 SERVER_BUSY, the multipart upload aborted, nothing kept, the server still serves', async () => {
    const server = await start();
    s3.failWhen((r) => r.method === 'PUT' && r.url.includes('partNumber=2'));
    const refused = await upload(server.url, largeWav());
    expectError(refused, 503, 'SERVER_BUSY', { resource: 'object_store' });
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(s3.requests.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    expect(await s3.pendingMultipartUploads()).toEqual([]);
    expect(await s3.objects()).toEqual([]);
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(await listedJobIds(server)).toEqual([]);

    // The whole store down: the same answer, nothing kept.
    s3.failWhen(null);
    await s3.stop();
    try {
      expectError(await upload(server.url, speechFixture().mp3), 503, 'SERVER_BUSY', { resource: 'object_store' });
      const ready = await getJson<{ status: string; components: Record<string, { status: string }> }>(
        `${server.url}/health/ready`,
      );
      expect(ready.status).toBe(503);
      expect(ready.body.components.object_store?.status).toBe('down');
    } finally {
      await s3.start();
    }
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(await listedJobIds(server)).toEqual([]);

    const accepted = await upload(server.url, largeWav());
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    expect(await s3.objects()).toEqual([uploadKey(accepted.body.id)]);
    expect((await waitForJob(server.url, accepted.body.id)).status).toBe('completed');
  });

  it('a delete the store cannot carry out answers 503 and keeps the job, to be deleted again', async () => {
    const server = await start({ UPLOAD_RETENTION_HOURS: '1' });
    const created = await upload(server.url, speechFixture().mp3);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const remove = () => fetch(`${server.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' });
    await s3.stop();
    try {
      const refused = await remove();
      expectError({ status: refused.status, body: await refused.json() }, 503, 'SERVER_BUSY', {
        resource: 'object_store',
      });
      expect((await getJson(`${server.url}/v1/jobs/${created.body.id}`)).status).toBe(200);
    } finally {
      await s3.start();
    }
    expect(await s3.objects()).toEqual([uploadKey(created.body.id)]);
    expect((await remove()).status).toBe(204);
    expect(await s3.objects()).toEqual([]);
    expect((await getJson(`${server.url}/v1/jobs/${created.body.id}`)).status).toBe(404);
  });

  it('refuses to start when the bucket does not exist or the credentials are refused', async () => {
    await expect(start({ STORAGE_URL: 's3://no-such-bucket/cs/' })).rejects.toThrow(
      /object store s3:\/\/no-such-bucket\/cs\/.*bucket_missing.*check STORAGE_URL and the credentials/,
    );
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAUNKNOWNKEY');
    await expect(start()).rejects.toThrow(/object store .*: auth/);
  });
});

/**
 * Resolves once the object is complete and three cleanup passes have listed the bucket since: the first two saw
 * it without a row (and the second one's pass ended before the third began), while its put had not been answered.
 */
async function passesWhileHeld(s3: TestS3, isList: (r: S3Request) => boolean): Promise<void> {
  await until(async () => (await s3.objects()).length > 0, 'the multipart object to be complete');
  const from = s3.requests.length;
  await until(() => s3.requests.slice(from).filter(isList).length >= 3, 'three cleanup passes to list the bucket');
}
