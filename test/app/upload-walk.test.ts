import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkMp3Duration, type Mp3StreamMeasure } from '../../src/chunker/mp3-duration.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, startServer, upload, type ErrorJson, type TestServer } from '../helper.ts';

/*
 * POST /v1/jobs walks an mp3's frames as the upload streams to disk (chunker/mp3-duration.ts measureMp3Stream), so
 * validation has its measure when the last byte arrives instead of reading the stored file again.
 */

describe('the frame walk of an upload as it streams in', () => {
  let server: TestServer;
  const seen: Array<ReturnType<Mp3StreamMeasure['result']> | undefined> = [];
  /** The stored upload as validation found it. */
  const stored: Buffer[] = [];

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', MAX_DURATION_S: '120' });
    // What the route hands to validation, seen on its way there.
    const validateMedia = server.services.validateMedia.bind(server.services);
    server.services.validateMedia = async (input) => {
      seen.push(input.walked?.result());
      stored.push(await readFile(input.file));
      return validateMedia(input);
    };
  });
  afterAll(async () => {
    await server?.close();
  });

  it('hands validation the walk of every byte stored, which the duration is judged on', async () => {
    const { mp3 } = speechFixture();
    const res = await upload(server.url, mp3, { dry_run: 'true' });
    expect(res.status).toBe(200);
    const walked = await walkMp3Duration(mp3, { maxDurationS: 120 });
    expect(seen.at(-1)).toMatchObject({ walk: walked, bytes: (await stat(mp3)).size });
    if (!walked.ok) throw new Error(walked.reason);
    expect((res.body as unknown as { audio: { duration_s: number } }).audio.duration_s).toBe(
      Math.round(walked.seconds * 1000) / 1000,
    );
    // Written in blocks (upload-receive.ts WRITE_BYTES), the last one shorter: every byte, in order.
    const sent = await readFile(mp3);
    expect(sent.length % (256 * 1024)).not.toBe(0);
    expect(stored.at(-1)?.equals(sent)).toBe(true);
  });

  it('finds no frames in a WAV, whose duration is measured from the file as before', async () => {
    const { wav } = speechFixture();
    const res = await upload(server.url, wav, { dry_run: 'true' });
    expect(res.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ walk: { ok: false }, bytes: (await stat(wav)).size });
    expect(stored.at(-1)?.equals(await readFile(wav))).toBe(true);
  });

  it('answers an mp3 whose first frame is too short for the Xing tag it names as any other, not 500 INTERNAL', async () => {
    // MPEG-2 layer III at 8 kb/s and 24 kHz: frames of 24 bytes, 25 with padding. A 25-byte first frame with
    // "Xing" where the demuxer looks (byte 21) has no room for the tag's flags (bytes 25-28).
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-short-xing-'));
    try {
      const audio = path.join(dir, 'audio.mp3');
      execFileSync('ffmpeg', [
        ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=f=300:d=4'],
        ...['-ar', '24000', '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '8k', '-write_xing', '0', '-id3v2_version', '0'],
        audio,
      ]);
      const first = Buffer.from([0xff, 0xf3, 0x16, 0x64, ...Buffer.alloc(21)]);
      first.write('Xing', 21, 'latin1');
      const file = path.join(dir, 'short-xing.mp3');
      await writeFile(file, Buffer.concat([first, await readFile(audio)]));
      const res = await upload(server.url, file, { dry_run: 'true' });
      expect({ status: res.status, code: (res.body as Partial<ErrorJson>).error?.code }).toEqual({
        status: 200,
        code: undefined,
      });
      expect(seen.at(-1)).toMatchObject({ walk: { ok: false }, bytes: (await stat(file)).size });
      expect((res.body as unknown as { audio: { format: string } }).audio.format).toBe('mp3');
      expect((await getJson(`${server.url}/health/live`)).status).toBe(200);
      // The walk of the stored file (a job whose upload was not walked as it arrived) gives way to ffmpeg too.
      await expect(walkMp3Duration(file, { maxDurationS: 120 })).resolves.toMatchObject({ ok: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
