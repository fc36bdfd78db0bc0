import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProber } from '../../src/chunker/ffprobe.ts';
import { createChunkReshaper, MIN_AUDIO_S } from '../../src/transcribe/chunk-reshaper.ts';
import { CLIPS, LIBRIVOX_DIR } from '../fixtures/speech.ts';

const logger = pino({ level: 'silent' });
const reshaper = createChunkReshaper({ logger, timeoutS: 30 });
const prober = createProber({ logger, timeoutS: 30 });
const signal = () => new AbortController().signal;

async function probe(file: string) {
  const p = await prober.probe(file);
  return {
    format: p.formatName,
    duration: p.durationS,
    codec: p.audio?.codec,
    rate: p.audio?.sampleRate,
    channels: p.audio?.channels,
  };
}

describe('chunk reshaper (real ffmpeg)', () => {
  let dir: string;
  let mp3: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'reshaper-'));
    const wav = path.join(dir, 'chunk-00000.wav');
    await copyFile(path.join(LIBRIVOX_DIR, `${CLIPS[0].id}.wav`), wav);
    mp3 = path.join(dir, 'chunk-00000.mp3');
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-i',
      wav,
      '-ar',
      '16000',
      '-ac',
      '1',
      '-c:a',
      'libmp3lame',
      '-b:a',
      '32k',
      mp3,
    ]);
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('re-encodes an mp3 chunk to 16 kHz mono flac of the same length', async () => {
    const out = await reshaper.reencode(mp3, signal());
    expect(out).toBe(`${mp3}.reencoded.flac`);
    const [a, b] = [await probe(mp3), await probe(out)];
    expect(b).toMatchObject({ format: 'flac', codec: 'flac', rate: 16000, channels: 1 });
    // The mp3 container's duration includes the encoder delay that decoding drops.
    expect(Math.abs(b.duration! - a.duration!)).toBeLessThan(0.15);
  });

  it('pads audio shorter than MIN_AUDIO_S so a provider does not call it too short', async () => {
    const short = path.join(dir, 'chunk-00001.wav');
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'sine=f=440:d=0.05',
      '-ar',
      '16000',
      '-ac',
      '1',
      short,
    ]);
    const out = await reshaper.reencode(short, signal());
    expect((await probe(out)).duration).toBeGreaterThanOrEqual(MIN_AUDIO_S - 0.01);
  });

  it('splits a chunk into pieces whose offsets and durations add up to the whole', async () => {
    const whole = (await probe(mp3)).duration!;
    const pieces = await reshaper.split(mp3, whole, 2, signal());
    expect(pieces.map((p) => path.basename(p.path))).toEqual([
      'chunk-00000.mp3.part0.mp3',
      'chunk-00000.mp3.part1.mp3',
    ]);
    expect(pieces[1]!.offsetS).toBeCloseTo(whole / 2, 3);
    for (const p of pieces) {
      const info = await probe(p.path);
      expect(info).toMatchObject({ format: 'mp3', rate: 16000, channels: 1 });
      // mp3 encoder delay and frame padding: within a few frames.
      expect(Math.abs(info.duration! - p.durationS)).toBeLessThan(0.15);
    }
  });

  it('fails with CHUNK_FAILED on a file that does not decode, leaving nothing behind', async () => {
    const bad = path.join(dir, 'chunk-00002.mp3');
    await writeFile(bad, Buffer.alloc(4096, 7));
    await expect(reshaper.reencode(bad, signal())).rejects.toMatchObject({ code: 'CHUNK_FAILED' });
    await expect(reshaper.split(bad, 10, 2, signal())).rejects.toMatchObject({ code: 'CHUNK_FAILED' });
    expect((await readdir(dir)).sort()).toEqual(['chunk-00000.mp3', 'chunk-00000.wav', 'chunk-00002.mp3']);
  });
});
