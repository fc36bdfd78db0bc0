import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProber } from '../../src/chunker/ffprobe.ts';
import { AppError } from '../../src/errors.ts';
import { speechFixture } from '../fixtures/speech.ts';
import type { SpeechFixture } from '../fixtures/speech.ts';

const logger = pino({ level: 'silent' });
// Short: a probe that followed a playlist to the FIFO below would block there until this limit.
const prober = createProber({ logger, timeoutS: 5 });

let dir: string;
let speech: SpeechFixture;
let server: Server;
let serverHits = 0;
let baseUrl: string;

const at = (name: string): string => path.join(dir, name);

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function hls(entry: string): string {
  return `#EXTM3U\n#EXT-X-TARGETDURATION:40\n#EXTINF:32,\n${entry}\n#EXT-X-ENDLIST\n`;
}

async function rejection(file: string): Promise<AppError> {
  const err: unknown = await prober.probe(file).then(
    () => new Error('probe resolved'),
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw err;
  return err;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'chunker-ffprobe-'));
  speech = speechFixture();
  // A local server proves the probe never follows a playlist: it must see no request at all.
  server = createServer((_req, res) => {
    serverHits += 1;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await writeFile(at('text.mp3'), 'Not a recording at all.\nJust words in a file.\n'.repeat(30));
  // Playlists and scripts name a FIFO: a probe that opens it blocks (and times out, MEDIA_CORRUPT),
  // so an UNSUPPORTED_MEDIA answer proves the named file was never opened.
  execFileSync('mkfifo', [at('segment.mp3')]);
  await writeFile(at('hls-path.mp3'), hls(at('segment.mp3')));
  await writeFile(at('hls-file-url.mp3'), hls(`file://${at('segment.mp3')}`));
  await writeFile(at('hls-http.mp3'), hls(`${baseUrl}/segment.mp3`));
  await writeFile(at('concat.mp3'), `ffconcat version 1.0\nfile 'segment.mp3'\n`);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=s=64x64:d=2:r=10', '-c:v', 'mpeg4', at('video-only.mp4')]);
  ffmpeg(['-i', speech.wav, '-t', '3', '-c:a', 'aac', '-b:a', '48k', at('speech.m4a')]);
  ffmpeg(['-i', speech.wav, '-t', '3', '-c:a', 'libopus', '-b:a', '24k', at('speech.webm')]);
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('createProber', () => {
  it('maps a wav file to its demuxer, codec and duration', async () => {
    const p = await prober.probe(speech.wav);
    expect(p.demuxer).toBe('wav');
    expect(p.formatName).toBe('wav');
    expect(p.durationS).toBeCloseTo(speech.durationS, 2);
    expect(p.audio).toMatchObject({ codec: 'pcm_s16le', sampleRate: 16000, channels: 1 });
    expect(p.audioStreamCount).toBe(1);
    expect(p.videoStreamCount).toBe(0);
    expect(p.sizeBytes).toBeGreaterThan(0);
  });

  it('maps an mp3 file to the mp3 demuxer with its stream details', async () => {
    const p = await prober.probe(speech.mp3);
    expect(p.demuxer).toBe('mp3');
    expect(p.audio).toMatchObject({ codec: 'mp3', sampleRate: 44100, channels: 2 });
    expect(p.bitRate).toBeGreaterThan(100_000);
    expect(Math.abs(p.durationS - speech.durationS)).toBeLessThan(0.2);
  });

  it('uses the first name of a comma list as the demuxer for m4a and webm', async () => {
    const m4a = await prober.probe(at('speech.m4a'));
    expect(m4a.formatName).toMatch(/^mov,mp4,m4a/);
    expect(m4a.demuxer).toBe('mov');
    const webm = await prober.probe(at('speech.webm'));
    expect(webm.formatName).toBe('matroska,webm');
    expect(webm.demuxer).toBe('matroska');
    expect(webm.audio?.codec).toBe('opus');
  });

  it('probes an mp4 with video only and reports no audio', async () => {
    const p = await prober.probe(at('video-only.mp4'));
    expect(p.demuxer).toBe('mov');
    expect(p.audio).toBeNull();
    expect(p.audioStreamCount).toBe(0);
    expect(p.videoStreamCount).toBe(1);
  });

  it('rejects a text file renamed .mp3 as UNSUPPORTED_MEDIA', async () => {
    const err = await rejection(at('text.mp3'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA');
    expect(err.statusCode).toBe(415);
  });

  it('rejects an HLS playlist saved as .mp3 that names a local file by path or file:// URL', async () => {
    for (const name of ['hls-path.mp3', 'hls-file-url.mp3']) {
      const err = await rejection(at(name));
      expect(err.code).toBe('UNSUPPORTED_MEDIA');
      expect(err.details).toEqual({ reason: 'container_not_allowed' });
    }
  });

  it('rejects an HLS playlist naming an http URL without fetching it', async () => {
    const err = await rejection(at('hls-http.mp3'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA');
    expect(serverHits).toBe(0);
  });

  it('rejects an ffconcat script', async () => {
    const err = await rejection(at('concat.mp3'));
    expect(err.code).toBe('UNSUPPORTED_MEDIA');
    expect(err.details).toEqual({ reason: 'container_not_allowed' });
  });

  it('kills ffprobe and throws MEDIA_CORRUPT when the probe outlives its time limit', async () => {
    const quick = createProber({ logger, timeoutS: 1 });
    // Opening a FIFO with no writer blocks forever.
    const err: unknown = await quick.probe(at('segment.mp3')).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('MEDIA_CORRUPT');
    expect((err as AppError).details).toEqual({ reason: 'probe_timeout' });
  });

  it('throws CANCELLED without running ffprobe when the signal is already aborted', async () => {
    const err: unknown = await prober.probe(speech.wav, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CANCELLED');
  });

  it('throws INTERNAL when the ffprobe binary does not exist', async () => {
    const broken = createProber({ logger, timeoutS: 5, ffprobePath: path.join(dir, 'no-such-ffprobe') });
    const err: unknown = await broken.probe(speech.wav).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('INTERNAL');
  });
});
