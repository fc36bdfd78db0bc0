import { execFile, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, upload, type JobJson, type TestServer } from '../helper.ts';
import { until } from '../support/until.ts';
import { expectError, expectNothingLeft, ffmpeg } from './hostile-kit.ts';

/** An HLS playlist naming one segment: ffmpeg's hls demuxer would open `target` on the uploader's behalf. */
function playlist(target: string): string {
  return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n${target}\n#EXT-X-ENDLIST\n`;
}

/**
 * Whether reading a file moves its atime here (relatime or strictatime): the read detector below depends on it.
 * Decided once, at collection, so the tests that need it can be skipped with a reason on a noatime mount.
 */
function atimeTracksReads(): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-atime-'));
  try {
    const file = path.join(dir, 'probe');
    writeFileSync(file, 'probe');
    utimesSync(file, 0, statSync(file).mtime);
    const fd = openSync(file, 'r');
    readSync(fd, Buffer.alloc(5));
    closeSync(fd);
    return statSync(file).atimeMs !== 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const canDetectReads = atimeTracksReads();
if (!canDetectReads)
  process.stderr.write(
    'hostile-uploads: reads do not update atime under os.tmpdir() (noatime?); read-detection tests skipped\n',
  );

/** atime 0 marks a file unread; a read since moves it (relatime updates an atime older than the mtime). */
async function markUnread(file: string): Promise<void> {
  const { mtime } = await stat(file);
  await utimes(file, 0, mtime);
}
async function wasRead(file: string): Promise<boolean> {
  return (await stat(file)).atimeMs !== 0;
}

/** Whether any process has `file` open (Linux /proc). */
async function isOpenAnywhere(file: string): Promise<boolean> {
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
    }
  }
  return false;
}

/** A TCP listener on 127.0.0.1 that only counts who connects. */
async function startListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, connections: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('hostile media uploads to POST /v1/jobs', () => {
  let server: TestServer;
  let dir: string;
  let listener: Awaited<ReturnType<typeof startListener>>;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-hostile-'));
    const f = (name: string) => path.join(dir, name);
    files.canary = f('canary.mp3');
    ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-ar', '16000', '-ac', '1', files.canary]);
    files.png = f('image.png');
    ffmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=64x64', '-frames:v', '1', files.png]);
    files.videoOnly = f('video-only.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=duration=2:size=64x64:rate=10', '-an', '-c:v', 'mpeg4', files.videoOnly]);
    files.long = f('long.mp3');
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=300:duration=75',
      '-ar',
      '8000',
      '-ac',
      '1',
      '-b:a',
      '16k',
      files.long,
    ]);
    listener = await startListener();
    server = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      MAX_UPLOAD_BYTES: String(2 * 1024 * 1024),
      MAX_DURATION_S: '60',
    });
  });
  afterAll(async () => {
    await server?.close();
    await listener?.close();
    await removeDir(server?.dataDir ?? '');
    await removeDir(dir);
  });

  /** The file's bytes under the name the client claims. */
  async function as(name: string, bytes: string | Buffer): Promise<Blob> {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    return new Blob([await readFile(file)]);
  }
  const send = (blob: Blob, filename: string) => {
    const form = new FormData();
    form.append('file', blob, filename);
    form.append('language', 'en');
    return fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as unknown,
    }));
  };

  it('answers 415 UNSUPPORTED_MEDIA empty_file to an empty file', async () => {
    expectError(await send(new Blob([]), 'empty.mp3'), 415, 'UNSUPPORTED_MEDIA', { reason: 'empty_file' });
    await expectNothingLeft(server);
  });

  it('answers 415 UNSUPPORTED_MEDIA to a text file renamed .mp3', async () => {
    const res = await send(await as('notes.mp3', 'hello, this is not audio at all\n'.repeat(100)), 'notes.mp3');
    expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'not_recognised' });
    await expectNothingLeft(server);
  });

  it('answers 415 UNSUPPORTED_MEDIA container_not_allowed to a PNG renamed .wav', async () => {
    const res = await send(new Blob([await readFile(files.png!)]), 'image.wav');
    expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'container_not_allowed' });
    await expectNothingLeft(server);
  });

  it('refuses an HLS playlist .mp3 naming an http URL without ever connecting to it', async () => {
    const target = `http://127.0.0.1:${listener.port}/segment.mp3`;
    const res = await send(await as('http-playlist.mp3', playlist(target)), 'playlist.mp3');
    expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'container_not_allowed' });
    expect(listener.connections()).toBe(0);
    await expectNothingLeft(server);
    expect(listener.connections()).toBe(0);
    // Control: the same playlist does reach the listener when ffprobe is allowed to follow it (it then fails
    // on the hang-up, which does not matter: the connection is what counts).
    const args = [
      '-v',
      'quiet',
      '-protocol_whitelist',
      'file,http,tcp',
      '-rw_timeout',
      '2000000',
      path.join(dir, 'http-playlist.mp3'),
    ];
    await new Promise((resolve) => execFile('ffprobe', args, { timeout: 10_000 }, resolve));
    await until(() => listener.connections() > 0, 'ffprobe following the playlist to connect to the listener', {
      everyMs: 50,
    });
  });

  it.skipIf(!canDetectReads)(
    'refuses an HLS playlist .mp3 naming a file:// URL without reading the named file',
    async () => {
      await markUnread(files.canary!);
      const res = await send(await as('file-playlist.mp3', playlist(`file://${files.canary}`)), 'playlist.mp3');
      expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'container_not_allowed' });
      expect(await wasRead(files.canary!)).toBe(false);
      await expectNothingLeft(server);
      // Control: an unguarded ffprobe follows the playlist and reads the canary.
      execFileSync('ffprobe', ['-v', 'quiet', path.join(dir, 'file-playlist.mp3')]);
      expect(await wasRead(files.canary!)).toBe(true);
    },
  );

  it.skipIf(!canDetectReads)('refuses an ffconcat script naming a local file without reading it', async () => {
    await markUnread(files.canary!);
    const script = `ffconcat version 1.0\nfile '${files.canary}'\nfile 'canary.mp3'\n`;
    const res = await send(await as('script.mp3', script), 'script.mp3');
    expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'container_not_allowed' });
    expect(await wasRead(files.canary!)).toBe(false);
    await expectNothingLeft(server);
  });

  it('answers 415 UNSUPPORTED_MEDIA no_audio_stream to an mp4 with video only', async () => {
    const res = await send(new Blob([await readFile(files.videoOnly!)]), 'clip.mp4');
    expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'no_audio_stream' });
    await expectNothingLeft(server);
  });

  it('answers 422 DURATION_OUT_OF_RANGE to a recording longer than MAX_DURATION_S', async () => {
    const res = await send(new Blob([await readFile(files.long!)]), 'long.mp3');
    expectError(res, 422, 'DURATION_OUT_OF_RANGE', { max_duration_s: 60 });
    const details = (res.body as { error: { details: { duration_s: number } } }).error.details;
    expect(details.duration_s).toBeGreaterThan(60);
    await expectNothingLeft(server);
  });
});

describe("an HLS playlist naming another job's upload", () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    // The fake never answers a transcription: the first job stays in `transcribing` with its upload on disk.
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    // Concurrency above the chunk count: every chunk is sent at once, so the slicer runs to the end and exits.
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_MAX_ATTEMPTS: '1',
      TRANSCRIBE_CONCURRENCY: '16',
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it.skipIf(!canDetectReads)(
    'is refused with 415 and the other upload is not read, by absolute path or file:// URL',
    async () => {
      const victim = await upload(server.url, speech.mp3, { language: 'en' });
      expect(victim.status).toBe(202);
      const id = victim.body.id;
      const victimUpload = path.join(server.dataDir, 'jobs', id, 'upload');
      // Settled: every chunk cut and sent (the slicer is done with the upload) and nobody has the upload open.
      await until(
        async () => {
          const job = (await getJson<JobJson>(`${server.url}/v1/jobs/${id}`)).body;
          const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions').length;
          return (
            job.stage === 'transcribing' && sent === job.progress.chunks_total && !(await isOpenAnywhere(victimUpload))
          );
        },
        'every chunk sent and the upload closed everywhere',
        { everyMs: 50 },
      );
      await markUnread(victimUpload);

      for (const target of [victimUpload, `file://${victimUpload}`]) {
        const res = await upload(server.url, new Blob([playlist(target)]), { language: 'en' });
        expectError(res, 415, 'UNSUPPORTED_MEDIA', { reason: 'container_not_allowed' });
        expect(await wasRead(victimUpload)).toBe(false);
        await expectNothingLeft(server, [id]);
      }
      // Control: the detector sees a read.
      await readFile(victimUpload);
      expect(await wasRead(victimUpload)).toBe(true);
      expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions').length).toBeGreaterThan(0);

      const del = await fetch(`${server.url}/v1/jobs/${id}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      await expectNothingLeft(server);
    },
  );
});
