import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, writeSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  pollJob,
  removeDir,
  startServer,
  waitForJob,
  type JobJson,
  type TestServer,
} from '../helper.ts';
import { jobRecord } from '../support/job-record.ts';
import { spawnService } from '../support/service-process.ts';
import { until } from '../support/until.ts';
import { expectError, ffmpeg, listedJobIds, multipart, postMultipart } from './hostile-kit.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Whether this process may mount a tmpfs (root outside a locked-down container); decided once, at collection. */
function tmpfsMountable(): { ok: boolean; why: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return { ok: true, why: '' };
  } catch (err) {
    return { ok: false, why: (err as Error).message.split('\n')[0] ?? 'mount failed' };
  } finally {
    rmdirSync(dir);
  }
}
const mountable = tmpfsMountable();
if (!mountable.ok) process.stderr.write(`disk-full tests skipped: cannot mount a tmpfs (${mountable.why})\n`);

async function mountTmpfs(size: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  return dir;
}
async function unmount(dir: string | undefined): Promise<void> {
  if (!dir) return;
  execFileSync('umount', [dir], { stdio: 'pipe' });
  await rm(dir, { recursive: true, force: true });
}

/** A chunked upload (no Content-Length, so admission cannot know its size) of `bytes` of filler as `file`. */
function chunkedUpload(
  server: TestServer,
  bytes: number,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  return new Promise((resolve, reject) => {
    const boundary = 'DiskFullBoundary';
    const req = http.request(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    let answered = false;
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('response', (res) => {
      answered = true;
      const got: Buffer[] = [];
      res.on('data', (c: Buffer) => got.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: JSON.parse(Buffer.concat(got).toString('utf8')) as unknown,
        });
      });
    });
    req.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
    );
    const piece = Buffer.alloc(64 * KiB, 0x33);
    let sent = 0;
    const pump = (): void => {
      if (answered || req.destroyed) return;
      if (sent >= bytes) {
        req.end(`\r\n--${boundary}--\r\n`);
        return;
      }
      sent += piece.length;
      req.write(piece, () => setImmediate(pump));
    };
    pump();
  });
}

describe.skipIf(!mountable.ok)(
  'uploads while DATA_DIR is a 2 MiB tmpfs with pressure thresholds below its size',
  () => {
    let mnt: string;
    let server: TestServer;
    let clip: Buffer;
    let scratch: string;

    beforeAll(async () => {
      scratch = await mkdtemp(path.join(os.tmpdir(), 'cs-disk-'));
      const clipFile = path.join(scratch, 'clip.wav');
      ffmpeg(['-i', speechFixture().wav, '-t', '3', '-c:a', 'pcm_s16le', clipFile]);
      clip = await readFile(clipFile);
      mnt = await mountTmpfs('2m');
      // Thresholds the volume can satisfy, so the upload gets past admission and the disk itself runs out.
      server = await startServer(
        {
          TRANSCRIBE_PROVIDER: 'local',
          PRESSURE_DISK_FREE_ELEVATED_BYTES: String(96 * KiB),
          PRESSURE_DISK_FREE_CRITICAL_BYTES: String(64 * KiB),
        },
        mnt,
      );
    });
    afterAll(async () => {
      await server?.close();
      await unmount(mnt);
      await removeDir(scratch);
    });

    async function expectStoreWorks(): Promise<void> {
      expect(await jobFiles(server.dataDir)).toEqual([]);
      expect(await listedJobIds(server)).toEqual([]);
      const res = await postMultipart(
        server,
        multipart([{ name: 'file', filename: 'clip.wav', contentType: 'audio/wav', data: clip }]),
      );
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const job = await waitForJob(server.url, res.body.id);
      expect(job.status).toBe('completed');
      const del = await fetch(`${server.url}/v1/jobs/${res.body.id}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      expect(await jobFiles(server.dataDir)).toEqual([]);
    }

    it('answers 503 SERVER_BUSY when the disk fills up mid-upload, removes the partial file, and stays usable', async () => {
      const res = await chunkedUpload(server, 4 * MiB);
      expectError(res, 503, 'SERVER_BUSY', { resource: 'disk' });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      await expectStoreWorks();
    });

    it('answers 507 INSUFFICIENT_STORAGE to a declared size the volume can never hold, before reading it', async () => {
      const form = multipart([
        { name: 'file', filename: 'big.wav', contentType: 'audio/wav', data: Buffer.alloc(3 * MiB, 1) },
      ]);
      expectError(await postMultipart(server, form), 507, 'INSUFFICIENT_STORAGE', { resource: 'disk' });
      await expectStoreWorks();
    });

    it('answers 503 SERVER_BUSY while the volume is nearly full and accepts again once space is freed', async () => {
      const filler = path.join(mnt, 'filler');
      // Leave about 160 KiB: above the thresholds, below what the clip and its chunks need.
      const { bavail, bsize } = await statfs(mnt);
      await writeFile(filler, Buffer.alloc(Math.max(0, bavail * bsize - 160 * KiB), 2));
      try {
        const res = await postMultipart(
          server,
          multipart([{ name: 'file', filename: 'clip.wav', contentType: 'audio/wav', data: clip }]),
        );
        expectError(res, 503, 'SERVER_BUSY', { resource: 'disk' });
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        expect(await jobFiles(server.dataDir)).toEqual([]);
        expect((await getJson(`${server.url}/v1/jobs`)).status).toBe(200);
      } finally {
        await rm(filler, { force: true });
      }
      await expectStoreWorks();
    });
  },
);

describe.skipIf(!mountable.ok)('uploads while DATA_DIR is a 2 MiB tmpfs with the default thresholds', () => {
  let mnt: string;
  let server: TestServer;

  beforeAll(async () => {
    mnt = await mountTmpfs('2m');
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local' }, mnt);
  });
  afterAll(async () => {
    await server?.close();
    await unmount(mnt);
  });

  it('refuses an upload with 503 SERVER_BUSY or 507 INSUFFICIENT_STORAGE, leaves nothing, and reports the disk', async () => {
    const res = await postMultipart(
      server,
      multipart([{ name: 'file', filename: 'a.wav', contentType: 'audio/wav', data: Buffer.alloc(200 * KiB, 1) }]),
    );
    expect([503, 507]).toContain(res.status);
    expectError(res, res.status, res.status === 503 ? 'SERVER_BUSY' : 'INSUFFICIENT_STORAGE', { resource: 'disk' });
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(await listedJobIds(server)).toEqual([]);
    const ready = await getJson<{ components: Record<string, { status: string }> }>(`${server.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.components.disk?.status).toBe('down');
  });
});

/** Takes every free byte of the volume under `dir` (until ENOSPC), as another program filling the disk would. */
function fillVolume(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const size of [1024 * KiB, 4 * KiB, 512]) {
      const piece = Buffer.alloc(size, 7);
      try {
        for (;;) writeSync(fd, piece);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Whether an ffmpeg (slicing, planning) still works on the job: /proc/<pid>/cmdline names its directory. */
async function ffmpegBusyWith(jobId: string): Promise<boolean> {
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('ffmpeg') && cmdline.includes(jobId)) return true;
  }
  return false;
}

type PollJson = JobJson & {
  progress: { chunks_sending: number; waiting: { reason: string; until: string | null } | null };
};

describe.skipIf(!mountable.ok)('a job while DATA_DIR (a 16 MiB tmpfs) fills up and is freed again', () => {
  let mnt: string | undefined;
  let fake: FakeOpenAI | undefined;
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    await fake?.close();
    await unmount(mnt);
  });

  it('pauses with progress.waiting disk_full, keeps serving, refuses uploads, then completes with every chunk sent once', async ({
    skip,
  }) => {
    // The pause comes from the job store's own writes failing on the full DATA_DIR: with TEST_STORE=postgresql the
    // store is elsewhere, the results are stored, and a job whose chunks are cut has nothing left to write there.
    if (inject('testPostgresUrl') !== null) skip('the job store is not on DATA_DIR');
    const fixture = speechFixture();
    mnt = await mountTmpfs('16m');
    // Every answer takes 2 s: the disk fills while the first chunks are with the provider.
    fake = await startFakeOpenAI({ latencyMs: 2_000 });
    server = await startServer(
      {
        OPENAI_API_KEY: FAKE_OPENAI_KEY,
        OPENAI_BASE_URL: fake.url,
        RATE_LIMIT_RPM: '6000',
        // Two requests in flight; a look-ahead of four chunks lets ffmpeg cut all three of them without pausing.
        TRANSCRIBE_CONCURRENCY: '2',
        PRESSURE_DISK_FREE_ELEVATED_BYTES: String(3 * MiB),
        PRESSURE_DISK_FREE_CRITICAL_BYTES: String(2 * MiB),
        PRESSURE_SAMPLE_MS: '100',
      },
      mnt,
    );
    const { url } = server;
    const sent = () => fake!.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const clip = await readFile(fixture.wav);
    const up = await postMultipart(
      server,
      multipart([{ name: 'file', filename: 'speech.wav', contentType: 'audio/wav', data: clip }]),
    );
    expect(up.status, JSON.stringify(up.body)).toBe(202);
    const id = (up.body as { id: string }).id;

    // Two chunks with the provider and ffmpeg done cutting (its chunk files are whole), then the disk is filled.
    await pollJob<PollJson>(url, id, (job) => job.progress.chunks_sending >= 2, 'two chunks sent');
    await until(async () => !(await ffmpegBusyWith(id)), 'ffmpeg to finish with the job', { everyMs: 100 });
    const filler = path.join(mnt, 'filler');
    fillVolume(filler);

    const paused = await pollJob<PollJson>(
      url,
      id,
      (job) => job.progress.waiting?.reason === 'disk_full',
      'progress.waiting disk_full',
    );
    expect(paused.status).toBe('processing');
    expect(Date.parse(paused.progress.waiting?.until ?? '')).not.toBeNaN();
    const sentWhilePaused = sent().length;

    // The server keeps serving: liveness, readiness (down for the disk), listing, and a refused upload that leaves nothing.
    expect((await getJson(`${url}/health`)).status).toBe(200);
    const ready = await getJson<{ components: Record<string, { status: string }> }>(`${url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.components.disk?.status).toBe('down');
    const refused = await postMultipart(
      server,
      multipart([{ name: 'file', filename: 'again.wav', contentType: 'audio/wav', data: clip }]),
    );
    expect([503, 507]).toContain(refused.status);
    expectError(refused, refused.status, refused.status === 503 ? 'SERVER_BUSY' : 'INSUFFICIENT_STORAGE', {
      resource: 'disk',
    });
    expect(await listedJobIds(server)).toEqual([id]);
    expect((await jobFiles(server.dataDir)).filter((f) => !f.startsWith(id))).toEqual([]);
    // No request goes out while its result could not be stored.
    expect((await getJson<PollJson>(`${url}/v1/jobs/${id}`)).body.progress.waiting?.reason).toBe('disk_full');
    expect(sent().length).toBe(sentWhilePaused);

    await rm(filler);
    const done = await waitForJob(url, id);
    expect(done.status, JSON.stringify(done.error)).toBe('completed');
    expect(done.progress.chunks_failed).toBe(0);
    expect(done.progress.chunks_done).toBe(done.progress.chunks_total);
    // Every chunk reached the provider exactly once: the results held while the disk was full were stored, not re-sent.
    const requests = sent();
    expect(requests.map((r) => r.attempt)).toEqual(requests.map(() => 0));
    expect(new Set(requests.map((r) => r.sha1)).size).toBe(done.progress.chunks_total);
    expect(requests).toHaveLength(done.progress.chunks_total);
    const transcript = await getJson<{ segments: unknown[] }>(`${url}/v1/jobs/${id}/transcript?format=json`);
    expect(transcript.status).toBe(200);
    expect(transcript.body.segments.length).toBeGreaterThan(0);

    expect((await fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(await listedJobIds(server)).toEqual([]);
    expect((await getJson(`${url}/health/ready`)).status).toBe(200);
  }, 60_000);
});

describe('a damaged job store', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await removeDir(dir);
  });

  it('stops the start with exit code 65 and one line naming the file and what to do', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-damaged-'));
    const file = path.join(dir, 'jobs.sqlite');
    const store = new SqliteJobStore({ file });
    for (let i = 0; i < 300; i++)
      await store.insertJob(jobRecord(`job_${String(i).padStart(22, '0')}`, 'completed', '2020-01-01T00:00:00.000Z'));
    await store.close();
    // Page 1 (the schema) stays readable, so the file opens; every table and index page after it is garbage.
    const bytes = await readFile(file);
    bytes.fill(0xa5, 4096);
    await writeFile(file, bytes);

    const service = spawnService({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local' });
    await service.exited;
    expect(service.child.exitCode).toBe(65);
    const problems = service.lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level >= 40 && !l.msg.startsWith('API_KEYS'));
    expect(problems).toHaveLength(1);
    expect(problems[0]?.level).toBe(60);
    expect(problems[0]?.msg).toContain(file);
    expect(problems[0]?.msg).toMatch(/damaged.*restore it from a backup/);
  }, 30_000);
});
