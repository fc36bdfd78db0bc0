import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAllowedDemuxer } from '../../src/chunker/containers.ts';
import { createDecodeChecker } from '../../src/chunker/decode-check.ts';
import { createProber } from '../../src/chunker/ffprobe.ts';
import { AppError } from '../../src/errors.ts';
import { createMediaValidator, type MediaValidator } from '../../src/validate/media-validator.ts';
import { speechFixture } from '../fixtures/speech.ts';

const logger = pino({ level: 'silent' });
const MAX_DURATION_S = 60;

let dir: string;
let speech: ReturnType<typeof speechFixture>;
let validator: MediaValidator;
/** Measures only when the header looks wrong. */
let lazyValidator: MediaValidator;

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function at(name: string): string {
  return path.join(dir, name);
}

/** The mp3 with the frame count of its Xing/Info header (which ffmpeg takes the duration from) set to `frames`. */
function withXingFrames(mp3: Buffer, frames: number): Buffer {
  const out = Buffer.from(mp3);
  const tag = Math.max(out.indexOf('Xing'), out.indexOf('Info'));
  // Flags, then the frame count (flag bit 0) as big-endian 32 bits.
  if (tag < 0 || (out.readUInt32BE(tag + 4) & 1) === 0) throw new Error('no Xing frame count');
  out.writeUInt32BE(frames, tag + 8);
  return out;
}

function hls(entry: string): string {
  return `#EXTM3U\n#EXT-X-TARGETDURATION:40\n#EXTINF:32,\n${entry}\n#EXT-X-ENDLIST\n`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'validate-media-'));
  speech = speechFixture();
  await writeFile(at('empty.mp3'), '');
  await writeFile(at('text.mp3'), 'This is a shopping list, not a recording.\nmilk\neggs\n'.repeat(20));
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'color=c=red:s=64x64:d=1',
    '-frames:v',
    '1',
    '-f',
    'image2',
    '-c:v',
    'png',
    at('png.wav'),
  ]);
  await writeFile(at('hls-http.mp3'), hls('http://127.0.0.1:9/segment.mp3'));
  await writeFile(at('hls-file-url.mp3'), hls(`file://${speech.wav}`));
  await writeFile(at('hls-abs-path.mp3'), hls(speech.wav));
  await writeFile(at('concat.mp3'), `ffconcat version 1.0\nfile '${speech.wav}'\nfile '${speech.wav}'\n`);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=s=64x64:d=2:r=10', '-c:v', 'mpeg4', at('video-only.mp4')]);
  // 90 s of tone: longer than MAX_DURATION_S.
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=16000:duration=90',
    '-c:a',
    'pcm_s16le',
    at('long.wav'),
  ]);
  const mp3 = await readFile(speech.mp3);
  await writeFile(at('truncated.mp3'), mp3.subarray(0, 2048));
  await writeFile(at('half.mp3'), mp3.subarray(0, Math.floor(mp3.length / 2)));
  // RIFF and data sizes patched to claim about 18 hours of 16 kHz mono s16le; the bytes hold ~32 s.
  const wav = Buffer.from(await readFile(speech.wav));
  const data = wav.indexOf('data');
  wav.writeUInt32LE(0x7fff_0000, data + 4);
  wav.writeUInt32LE(0x7fff_0000 + data - 4, 4);
  await writeFile(at('lying.wav'), wav);
  // An mp4 whose index (moved to the front) lists all samples, cut to a third of its bytes.
  ffmpeg(['-i', speech.wav, '-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart', at('full.m4a')]);
  const m4a = await readFile(at('full.m4a'));
  await writeFile(at('truncated.m4a'), m4a.subarray(0, Math.floor(m4a.length / 3)));
  await copyFile(speech.mp3, at('speech.mp3'));
  // 90 s of frames whose Xing header counts 10 s (1152 samples per frame at 44.1 kHz).
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=44100:duration=90',
    '-c:a',
    'libmp3lame',
    '-b:a',
    '128k',
    at('long.mp3'),
  ]);
  await writeFile(
    at('long-claims-short.mp3'),
    withXingFrames(await readFile(at('long.mp3')), Math.round((10 * 44_100) / 1152)),
  );

  const prober = createProber({ logger, timeoutS: 20 });
  const decodeChecker = createDecodeChecker({ logger, timeoutS: 20 });
  validator = createMediaValidator({
    logger,
    prober,
    decodeChecker,
    isAllowedDemuxer,
    maxDurationS: MAX_DURATION_S,
    planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 10), overlapS: 0 }),
  });
  lazyValidator = createMediaValidator({
    logger,
    prober,
    decodeChecker,
    isAllowedDemuxer,
    maxDurationS: MAX_DURATION_S,
    planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 10), overlapS: 0 }),
    measure: 'suspicious',
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(name: string, v: MediaValidator = validator): Promise<string> {
  const err = await v.validate({ file: at(name), filename: name, model: 'whisper-1' }).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError))
    throw new Error(`expected ${name} to be rejected with an AppError, got ${String(err)}`);
  return err.code;
}

describe('media validator on real files', () => {
  it('accepts the speech mp3 and reports what decodes', async () => {
    const r = await validator.validate({ file: at('speech.mp3'), filename: 'speech.mp3', model: 'whisper-1' });
    expect(r.audio).toMatchObject({
      filename: 'speech.mp3',
      format: 'mp3',
      demuxer: 'mp3',
      codec: 'mp3',
      sample_rate: 44_100,
      channels: 2,
    });
    expect(r.audio.duration_s).toBeGreaterThan(speech.durationS - 0.5);
    expect(r.audio.duration_s).toBeLessThan(speech.durationS + 0.5);
    expect(r.planned.chunks).toBe(Math.ceil(r.audio.duration_s / 10));
    expect(r.bitrate).toBeGreaterThan(100_000);
    expect(r.durationSource).toBe('measured');
  });

  it('accepts the speech wav', async () => {
    const r = await validator.validate({ file: speech.wav, filename: 'speech.wav', model: 'whisper-1' });
    expect(r.audio).toMatchObject({ format: 'wav', codec: 'pcm_s16le', sample_rate: 16_000, channels: 1 });
  });

  it.each([
    ['an empty file', 'empty.mp3'],
    ['a text file renamed .mp3', 'text.mp3'],
    ['a PNG renamed .wav', 'png.wav'],
    ['an HLS playlist naming an http URL', 'hls-http.mp3'],
    ['an HLS playlist naming a file:// URL', 'hls-file-url.mp3'],
    ['an HLS playlist naming a local absolute path', 'hls-abs-path.mp3'],
    ['an ffconcat script', 'concat.mp3'],
    ['an mp4 with video only', 'video-only.mp4'],
  ])('rejects %s as 415 UNSUPPORTED_MEDIA', async (_, name) => {
    expect(await codeOf(name)).toBe('UNSUPPORTED_MEDIA');
  });

  it('rejects a wav longer than maxDurationS as DURATION_OUT_OF_RANGE', async () => {
    expect(await codeOf('long.wav')).toBe('DURATION_OUT_OF_RANGE');
  });

  it.each([
    ['the first 2 KB of an mp3', 'truncated.mp3'],
    ['the first half of an mp3 whose Xing header counts every frame', 'half.mp3'],
    ['a third of an m4a whose index lists every sample', 'truncated.m4a'],
  ])('rejects %s as MEDIA_CORRUPT', async (_, name) => {
    expect(await codeOf(name)).toBe('MEDIA_CORRUPT');
  });

  it('rejects an mp3 whose header claims 10 s but that holds 90 s as DURATION_OUT_OF_RANGE', async () => {
    const probe = await createProber({ logger, timeoutS: 20 }).probe(at('long-claims-short.mp3'));
    expect(probe.durationS).toBeLessThan(11);
    expect(await codeOf('long-claims-short.mp3')).toBe('DURATION_OUT_OF_RANGE');
  });

  it('measures the same duration by demuxing as by decoding', async () => {
    const decoding = createMediaValidator({
      logger,
      prober: createProber({ logger, timeoutS: 20 }),
      decodeChecker: createDecodeChecker({ logger, timeoutS: 20 }),
      maxDurationS: MAX_DURATION_S,
      planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 10), overlapS: 0 }),
      measureBy: 'decode',
    });
    for (const name of ['speech.mp3', 'lying.wav', 'full.m4a']) {
      const a = await validator.validate({ file: at(name), filename: name, model: 'whisper-1' });
      const b = await decoding.validate({ file: at(name), filename: name, model: 'whisper-1' });
      expect(Math.abs(a.audio.duration_s - b.audio.duration_s)).toBeLessThan(0.1);
    }
  });

  it('judges a wav whose header claims 18 hours on the ~32 s it holds', async () => {
    const r = await validator.validate({ file: at('lying.wav'), filename: 'lying.wav', model: 'whisper-1' });
    expect(r.audio.duration_s).toBeGreaterThan(speech.durationS - 0.5);
    expect(r.audio.duration_s).toBeLessThan(speech.durationS + 0.5);
  });

  it.each(['truncated.mp3', 'half.mp3', 'truncated.m4a'])(
    'still rejects %s as MEDIA_CORRUPT when measuring only suspicious headers',
    async (name) => {
      expect(await codeOf(name, lazyValidator)).toBe('MEDIA_CORRUPT');
    },
  );

  it('trusts a plausible header without measuring when measuring only suspicious headers', async () => {
    const r = await lazyValidator.validate({ file: at('speech.mp3'), filename: 'speech.mp3', model: 'whisper-1' });
    expect(r.durationSource).toBe('header');
    expect(r.audio.duration_s).toBeCloseTo(32.261, 2);
  });
});
