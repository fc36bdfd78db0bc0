import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, startServer, waitForJob, type TestServer } from '../helper.ts';
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
function chunkedUpload(server: TestServer, bytes: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  return new Promise((resolve, reject) => {
    const boundary = 'DiskFullBoundary';
    const req = http.request(`${server.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
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
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(got).toString('utf8')) as unknown });
      });
    });
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
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

describe.skipIf(!mountable.ok)('uploads while DATA_DIR is a 2 MiB tmpfs with pressure thresholds below its size', () => {
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
      { TRANSCRIBE_PROVIDER: 'local', PRESSURE_DISK_FREE_ELEVATED_BYTES: String(96 * KiB), PRESSURE_DISK_FREE_CRITICAL_BYTES: String(64 * KiB) },
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
    const res = await postMultipart(server, multipart([{ name: 'file', filename: 'clip.wav', contentType: 'audio/wav', data: clip }]));
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
    const form = multipart([{ name: 'file', filename: 'big.wav', contentType: 'audio/wav', data: Buffer.alloc(3 * MiB, 1) }]);
    expectError(await postMultipart(server, form), 507, 'INSUFFICIENT_STORAGE', { resource: 'disk' });
    await expectStoreWorks();
  });

  it('answers 503 SERVER_BUSY while the volume is nearly full and accepts again once space is freed', async () => {
    const filler = path.join(mnt, 'filler');
    // Leave about 160 KiB: above the thresholds, below what the clip and its chunks need.
    const { bavail, bsize } = await statfs(mnt);
    await writeFile(filler, Buffer.alloc(Math.max(0, bavail * bsize - 160 * KiB), 2));
    try {
      const res = await postMultipart(server, multipart([{ name: 'file', filename: 'clip.wav', contentType: 'audio/wav', data: clip }]));
      expectError(res, 503, 'SERVER_BUSY', { resource: 'disk' });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(await jobFiles(server.dataDir)).toEqual([]);
      expect((await getJson(`${server.url}/v1/jobs`)).status).toBe(200);
    } finally {
      await rm(filler, { force: true });
    }
    await expectStoreWorks();
  });
});

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
    const res = await postMultipart(server, multipart([{ name: 'file', filename: 'a.wav', contentType: 'audio/wav', data: Buffer.alloc(200 * KiB, 1) }]));
    expect([503, 507]).toContain(res.status);
    expectError(res, res.status, res.status === 503 ? 'SERVER_BUSY' : 'INSUFFICIENT_STORAGE', { resource: 'disk' });
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect(await listedJobIds(server)).toEqual([]);
    const ready = await getJson<{ components: Record<string, { status: string }> }>(`${server.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body.components.disk?.status).toBe('down');
  });
});
