import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import { createSlicer } from '../../src/chunker/slicer.ts';
import type { SliceHandle, SliceOptions } from '../../src/chunker/slicer.ts';
import { planSplits } from '../../src/chunker/cut-points.ts';
import type { SlicedChunk } from '../../src/chunker/types.ts';
import { AppError } from '../../src/errors.ts';
import { speechFixture } from '../fixtures/speech.ts';
import type { SpeechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const slicer = createSlicer({ logger, timeoutS: 120 });
const LONG_S = 20 * 60;

let root: string;
let out: string;
let long: string;
let speech: SpeechFixture;

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function probeDuration(file: string): number {
  return Number(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString(),
  );
}

/** ffmpeg processes (any state, zombies included) whose command line writes into `dir`. */
function ffmpegProcesses(dir: string): Array<{ pid: number; state: string }> {
  const found: Array<{ pid: number; state: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^\d+ \((.*)\) (\S)/.exec(readFileSync(`/proc/${name}/stat`, 'utf8'));
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (m?.[1] === 'ffmpeg' && m[2] && cmdline.includes(dir)) found.push({ pid: Number(name), state: m[2] });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Polls until the slicing ffmpeg is stopped (SIGSTOP); fails if it exits instead. */
async function untilStopped(dir: string): Promise<void> {
  await until(
    () => {
      const procs = ffmpegProcesses(dir);
      if (procs.length === 0) throw new Error('ffmpeg ended instead of pausing');
      return procs[0]?.state === 'T';
    },
    'the slicing ffmpeg to be stopped by back-pressure',
    { everyMs: 10 },
  );
}

async function chunkFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('chunk-')).sort();
}

function slice(opts: Partial<SliceOptions> & Pick<SliceOptions, 'input' | 'cutPoints'>): SliceHandle {
  return slicer.slice({ demuxer: 'mp3', outDir: out, format: 'wav', lookahead: 1000, maxDurationS: 6 * 3600, ...opts });
}

async function drain(handle: SliceHandle): Promise<SlicedChunk[]> {
  const got: SlicedChunk[] = [];
  for await (const c of handle.chunks) {
    got.push(c);
    handle.release(c.index);
  }
  return got;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'chunker-slicer-'));
  speech = speechFixture();
  long = path.join(root, 'long.mp3');
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=300:sample_rate=16000:duration=${LONG_S}`,
    '-ac',
    '1',
    '-c:a',
    'libmp3lame',
    '-b:a',
    '32k',
    long,
  ]);
  const mp3 = await readFile(speech.mp3);
  await writeFile(path.join(root, 'half.mp3'), mp3.subarray(0, Math.floor(mp3.length / 2)));
  await writeFile(path.join(root, 'text.mp3'), 'no audio here\n'.repeat(200));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  out = await mkdtemp(path.join(root, 'out-'));
});

afterEach(() => {
  // Whatever a test did, it must not leave ffmpeg behind (running, stopped or zombie).
  expect(ffmpegProcesses(out)).toEqual([]);
});

describe('createSlicer', () => {
  it('cuts the fixture at silence-aware 10 s points into chunks that add up to the input', async () => {
    const silences = await createSilenceDetector({ logger, timeoutS: 30 }).detectSilences(speech.wav, {
      demuxer: 'wav',
      maxDurationS: 3600,
    });
    const cutPoints = planSplits({ durationS: speech.durationS, targetS: 10, silences, searchWindowS: 3 });
    const chunks = await drain(slice({ input: speech.wav, demuxer: 'wav', cutPoints }));

    expect(chunks.map((c) => c.index)).toEqual(cutPoints.map((_, i) => i).concat(cutPoints.length));
    const total = chunks.reduce((sum, c) => sum + c.durationS, 0);
    expect(Math.abs(total - speech.durationS)).toBeLessThan(0.05);
    chunks.forEach((c, i) => {
      // Each chunk starts at the first packet at or after its cut (pcm packets here are 128 ms) and
      // where the previous one ended.
      const cut = i === 0 ? 0 : (cutPoints[i - 1] ?? 0);
      expect(c.startS).toBeGreaterThanOrEqual(cut);
      expect(c.startS - cut).toBeLessThan(0.15);
      if (i > 0) expect(c.startS).toBeCloseTo((chunks[i - 1]?.startS ?? 0) + (chunks[i - 1]?.durationS ?? 0), 3);
    });
    for (const c of chunks) {
      expect((await stat(c.path)).size).toBe(c.bytes);
      expect(Math.abs(probeDuration(c.path) - c.durationS)).toBeLessThan(0.01);
    }
  });

  it.each(['flac', 'mp3', 'ogg'] as const)('writes playable 16 kHz mono %s chunks', async (format) => {
    const chunks = await drain(slice({ input: speech.mp3, cutPoints: [10, 20], format }));
    expect(chunks).toHaveLength(3);
    for (const c of chunks) {
      expect(c.path.endsWith(`.${format}`)).toBe(true);
      const info = execFileSync('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name,sample_rate,channels',
        '-of',
        'csv=p=0',
        c.path,
      ])
        .toString()
        .trim();
      // Opus always reports its 48 kHz decoding rate; what was encoded is 16 kHz.
      expect(info).toBe(format === 'ogg' ? 'opus,48000,1' : `${format},16000,1`);
    }
  });

  it.each([
    ['mp3', 'mp3'],
    ['wav', 'wav'],
  ] as const)('copies the %s packets unchanged into %s chunks that add up to the input', async (demuxer, format) => {
    const input = demuxer === 'mp3' ? speech.mp3 : speech.wav;
    const source = execFileSync('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_name,sample_rate,channels,bit_rate',
      '-of',
      'csv=p=0',
      input,
    ])
      .toString()
      .trim();
    const chunks = await drain(slice({ input, demuxer, cutPoints: [10, 20], format, mode: 'copy' }));
    expect(chunks).toHaveLength(3);
    let bytes = 0;
    for (const c of chunks) {
      expect(c.path.endsWith(`.${format}`)).toBe(true);
      const info = execFileSync('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name,sample_rate,channels,bit_rate',
        '-of',
        'csv=p=0',
        c.path,
      ])
        .toString()
        .trim();
      expect(info).toBe(source);
      expect(Math.abs(probeDuration(c.path) - c.durationS)).toBeLessThan(0.05);
      bytes += c.bytes;
    }
    const total = chunks.reduce((sum, c) => sum + c.durationS, 0);
    expect(Math.abs(total - probeDuration(input))).toBeLessThan(0.05);
    // No re-encode: the chunks hold the source's bytes (plus a header each, minus the source's tags).
    expect(Math.abs(bytes - (await stat(input)).size)).toBeLessThan(4096);
  });

  it('announces the first chunk of a long input while ffmpeg is still running', async () => {
    const handle = slice({ input: long, cutPoints: planSplits({ durationS: LONG_S, targetS: 60 }) });
    let settled = false;
    void handle.done.finally(() => {
      settled = true;
    });
    const it = handle.chunks[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect(settled).toBe(false);
    expect(ffmpegProcesses(out)).toHaveLength(1);
    let count = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) count += 1;
    expect(count).toBe(20);
    expect(await handle.done).toEqual({ count: 20 });
  });

  it('pauses ffmpeg while the look-ahead is full and resumes it on release', async () => {
    const handle = slice({ input: long, cutPoints: planSplits({ durationS: LONG_S, targetS: 60 }), lookahead: 2 });
    const it = handle.chunks[Symbol.asyncIterator]();
    const held = [await it.next(), await it.next()];
    await untilStopped(out);

    const state = handle.state();
    expect(state.paused).toBe(true);
    expect(state.unreleased).toBeGreaterThanOrEqual(2);
    expect(state.announced).toBeLessThan(20);
    // Stopped: besides the announced chunks, at most the one being written exists.
    expect((await chunkFiles(out)).length).toBeLessThanOrEqual(state.announced + 1);

    for (const r of held) if (!r.done) handle.release(r.value.index);
    let count = held.length;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      count += 1;
      handle.release(r.value.index);
    }
    expect(count).toBe(20);
    expect(await handle.done).toEqual({ count: 20 });
  });

  it('kills a paused ffmpeg on cancel and leaves no process and no files', async () => {
    const ac = new AbortController();
    const handle = slice({
      input: long,
      cutPoints: planSplits({ durationS: LONG_S, targetS: 60 }),
      lookahead: 1,
      signal: ac.signal,
    });
    const it = handle.chunks[Symbol.asyncIterator]();
    const first = await it.next();
    await untilStopped(out);
    // The chunk handed out is the consumer's to delete.
    if (!first.done) await rm(first.value.path);
    ac.abort();

    await expect(handle.done).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(it.next()).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(ffmpegProcesses(out)).toEqual([]);
    expect(await readdir(out)).toEqual([]);
  });

  it('fails INTERNAL tool_killed, not MEDIA_CORRUPT, when its ffmpeg is killed from outside, and removes the chunks not handed out', async () => {
    const handle = slice({ input: long, cutPoints: planSplits({ durationS: LONG_S, targetS: 60 }), lookahead: 2 });
    const it = handle.chunks[Symbol.asyncIterator]();
    const first = await it.next();
    await untilStopped(out);
    // As the kernel's OOM killer or an operator's kill -9 would; SIGKILL ends a stopped process too.
    for (const p of ffmpegProcesses(out)) process.kill(p.pid, 'SIGKILL');

    const err = { code: 'INTERNAL', details: { reason: 'tool_killed', signal: 'SIGKILL' } };
    await expect(handle.done).rejects.toMatchObject(err);
    // The chunk cut but not yet handed out is still handed out (whole); then the failure.
    const rest: string[] = [];
    await expect(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.path);
      })(),
    ).rejects.toMatchObject(err);
    if (!first.done) await rm(first.value.path);
    await Promise.all(rest.map((f) => rm(f)));
    expect(await readdir(out)).toEqual([]);
  });

  it('stops ffmpeg and removes the chunks not handed out when the consumer breaks out', async () => {
    const handle = slice({ input: long, cutPoints: planSplits({ durationS: LONG_S, targetS: 60 }), lookahead: 3 });
    for await (const c of handle.chunks) {
      expect(c.index).toBe(0);
      break;
    }
    await expect(handle.done).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await chunkFiles(out)).toEqual(['chunk-00000.wav']);
  });

  it('does not start ffmpeg when the signal is already aborted', async () => {
    const handle = slice({ input: long, cutPoints: [60], signal: AbortSignal.abort() });
    await expect(drain(handle)).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await readdir(out)).toEqual([]);
  });

  it('yields the chunks cut before a truncation, then throws MEDIA_CORRUPT with the position', async () => {
    const handle = slice({
      input: path.join(root, 'half.mp3'),
      cutPoints: [5, 10, 15, 20, 25, 30],
      expectedDurationS: speech.durationS,
    });
    const got: SlicedChunk[] = [];
    const err: unknown = await (async () => {
      for await (const c of handle.chunks) got.push(c);
    })().then(
      () => null,
      (e: unknown) => e,
    );

    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('MEDIA_CORRUPT');
    expect(got.length).toBeGreaterThanOrEqual(3);
    const last = got[got.length - 1];
    const positionS = (err as AppError).details?.positionS;
    expect(positionS).toBeCloseTo((last?.startS ?? 0) + (last?.durationS ?? 0), 3);
    expect(positionS).toBeLessThan(speech.durationS * 0.6);
    // Nobody awaited `done` yet: it rejects the same way, without an unhandled rejection before.
    await expect(handle.done).rejects.toBe(err);
  });

  it('throws MEDIA_CORRUPT at position 0 and leaves no file when ffmpeg cannot read the input', async () => {
    const handle = slice({ input: path.join(root, 'text.mp3'), cutPoints: [10] });
    await expect(drain(handle)).rejects.toMatchObject({ code: 'MEDIA_CORRUPT', details: { positionS: 0 } });
    expect(await readdir(out)).toEqual([]);
  });

  it('throws a TypeError for cut points that do not increase', () => {
    expect(() => slice({ input: long, cutPoints: [10, 10] })).toThrow(TypeError);
    expect(() => slice({ input: long, cutPoints: [10], lookahead: 0 })).toThrow(TypeError);
  });
});
