import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { readMp3Layout } from '../../src/chunker/mp3-frames.ts';
import { sliceMp3 } from '../../src/chunker/mp3-slicer.ts';
import { withOverlap } from '../../src/chunker/overlap-lead.ts';
import { createSlicer } from '../../src/chunker/slicer.ts';
import type { SlicedChunk } from '../../src/chunker/types.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-mp3-slicer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 30 s of continuous sound as a 128 kb/s 44.1 kHz stereo mp3 (an ID3 tag and an Info frame first, as ffmpeg writes). */
const mp3 = path.join(dir, 'tone.mp3');
execFileSync('ffmpeg', [
  ...['-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=44100:duration=30'],
  ...['-f', 'lavfi', '-i', 'anoisesrc=color=pink:amplitude=0.1:sample_rate=44100:seed=5:duration=30'],
  ...['-filter_complex', '[0:a][1:a]amix=inputs=2,aformat=channel_layouts=stereo[out]', '-map', '[out]'],
  ...['-c:a', 'libmp3lame', '-b:a', '128k', mp3],
]);
const FRAME_S = 1152 / 44_100;
const CUTS = [7.5, 15, 22.25];

let n = 0;
let outDir = '';
beforeEach(() => {
  n += 1;
  outDir = mkdtempSync(path.join(dir, `out-${n}-`));
});

async function* listed(cuts: readonly number[]): AsyncGenerator<number> {
  yield* cuts;
}

async function drain(stream: { chunks: AsyncIterable<SlicedChunk>; release(i: number): void }) {
  const out: Array<SlicedChunk & { data: Buffer }> = [];
  for await (const c of stream.chunks) {
    out.push({ ...c, data: readFileSync(c.path) });
    stream.release(c.index);
  }
  return out;
}

describe('sliceMp3', () => {
  it("cuts where ffmpeg's segment muxer cuts, with the same start times, each chunk the upload's own frames", async () => {
    const signal = new AbortController().signal;
    const ours = await drain(
      sliceMp3({ input: mp3, outDir, cuts: listed(CUTS), lookahead: 2, maxDurationS: 3600, signal, logger }),
    );
    const ffDir = mkdtempSync(path.join(dir, 'ff-'));
    const ff = createSlicer({ logger, timeoutS: 60 }).slice({
      ...{ input: mp3, demuxer: 'mp3', outDir: ffDir, cutPoints: CUTS, format: 'mp3', mode: 'copy' },
      ...{ lookahead: 8, maxDurationS: 3600, signal },
    });
    const theirs = await drain(ff);
    expect(ours.map((c) => c.startS)).toEqual(theirs.map((c) => c.startS));
    ours.forEach((c, i) => expect(c.durationS).toBeCloseTo(theirs[i]?.durationS ?? NaN, 5));
    // Starts are whole frames: 7.5 s is frame 287.1, cut at frame 288.
    expect(ours[1]?.startS).toBeCloseTo(288 * FRAME_S, 6);

    const source = readFileSync(mp3);
    const { frames } = await readMp3Layout(mp3);
    let offset = frames.offsets[0] ?? -1;
    for (const c of ours) {
      // One run of the upload's bytes, from the first audio frame on, chunk after chunk.
      expect(source.subarray(offset, offset + c.data.length).equals(c.data)).toBe(true);
      offset += c.data.length;
    }
    expect(offset).toBe(frames.end(frames.length - 1));
  });

  it('starts each chunk after the first with the last whole frames of the one before: the bytes withOverlap joined', async () => {
    const signal = new AbortController().signal;
    const leadS = 40 * FRAME_S;
    const led = await drain(
      sliceMp3({ input: mp3, outDir, cuts: listed(CUTS), leadS, lookahead: 2, maxDurationS: 3600, signal, logger }),
    );
    const joinedDir = mkdtempSync(path.join(dir, 'joined-'));
    const plain = sliceMp3({
      input: mp3,
      outDir: joinedDir,
      cuts: listed(CUTS),
      lookahead: 8,
      maxDurationS: 3600,
      signal,
      logger,
    });
    const joined = await drain(withOverlap(plain, { overlapS: leadS, logger }));
    expect(led.map(({ data, path: _p, ...c }) => ({ ...c, bytes: data.length }))).toEqual(
      joined.map(({ data, path: _p, ...c }) => ({ ...c, bytes: data.length })),
    );
    led.forEach((c, i) => expect(c.data.equals(joined[i]?.data ?? Buffer.alloc(0))).toBe(true));
    expect(led[0]?.leadS).toBeUndefined();
    expect(led[1]?.leadS).toBeCloseTo(leadS, 6);
  });

  it('cuts early where a chunk, its lead included, would pass maxBytes', async () => {
    const frameBytes = 418; // 128 kb/s at 44.1 kHz: 417 or 418 bytes a frame
    const maxBytes = 200 * frameBytes;
    const chunks = await drain(
      sliceMp3({
        ...{ input: mp3, outDir, cuts: listed(CUTS), leadS: 20 * FRAME_S, maxBytes, lookahead: 2, maxDurationS: 3600 },
        ...{ signal: new AbortController().signal, logger },
      }),
    );
    expect(chunks.length).toBeGreaterThan(CUTS.length + 1);
    for (const c of chunks) expect(c.data.length).toBeLessThanOrEqual(maxBytes);
    // Contiguous: each chunk's own audio starts where the one before ended, and the planned cuts are still cuts.
    chunks.slice(1).forEach((c, i) => {
      const before = chunks[i];
      expect(c.startS).toBeCloseTo((before?.startS ?? 0) + (before?.durationS ?? 0), 5);
    });
    const starts = chunks.map((c) => c.startS);
    for (const cut of CUTS) expect(starts.some((s) => s >= cut - 1e-6 && s < cut + FRAME_S)).toBe(true);
  });

  it('hands out the first chunk before the second cut is decided', async () => {
    let decide!: (cut: number) => void;
    const second = new Promise<number>((res) => {
      decide = res;
    });
    let asked = 0;
    async function* planned(): AsyncGenerator<number> {
      asked += 1;
      yield 7.5;
      asked += 1;
      yield await second;
    }
    const stream = sliceMp3({
      ...{ input: mp3, outDir, cuts: planned(), lookahead: 2, maxDurationS: 3600 },
      ...{ signal: new AbortController().signal, logger },
    });
    const it = stream.chunks[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toMatchObject({ index: 0, startS: 0 });
    expect(asked).toBe(1); // the second cut is not decided yet (nor asked for)
    stream.release(0);
    decide(15);
    const rest: SlicedChunk[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      rest.push(r.value);
      stream.release(r.value.index);
    }
    expect(rest.map((c) => c.index)).toEqual([1, 2]);
    expect(await stream.done).toEqual({ count: 3 });
  });

  it('walks the frames while the first cut is planned, and lets go of the upload when planning fails', async () => {
    // 40,000 frames of 418 bytes (~17 MB, 17 min at 128 kb/s): more than the walk reads ahead.
    const frame = Buffer.alloc(418);
    frame.set([0xff, 0xfb, 0x92, 0x00]);
    const big = path.join(dir, 'frames.mp3');
    writeFileSync(big, Buffer.concat(Array.from({ length: 40_000 }, () => frame)));
    const handlesOn = (file: string): number =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false;
        }
      }).length;
    let fail!: (err: Error) => void;
    const pending = new Promise<number>((_, reject) => {
      fail = reject;
    });
    async function* planned(): AsyncGenerator<number> {
      yield await pending;
    }
    const stream = sliceMp3({
      ...{ input: big, outDir, cuts: planned(), lookahead: 2, maxDurationS: 36_000 },
      ...{ signal: new AbortController().signal, logger },
    });
    const first = stream.chunks[Symbol.asyncIterator]().next();
    first.catch(() => undefined);
    // The copy's handle and the frame walk's: the walk did not wait for the cut.
    await until(() => handlesOn(big) === 2, 'the frame walk to start before the first cut is known');
    fail(new Error('planning failed'));
    await expect(first).rejects.toThrow('planning failed');
    await until(() => handlesOn(big) === 0, 'every handle on the upload to be closed');
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('leaves no file behind but those handed out when the job is cancelled', async () => {
    const ac = new AbortController();
    const stream = sliceMp3({
      input: mp3,
      outDir,
      cuts: listed(CUTS),
      lookahead: 1,
      maxDurationS: 3600,
      signal: ac.signal,
      logger,
    });
    const it = stream.chunks[Symbol.asyncIterator]();
    const first = await it.next();
    const waiting = it.next(); // the look-ahead is full: it waits for a release
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    await expect(stream.done).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(readdirSync(outDir)).toEqual([path.basename(first.value?.path ?? '')]);
  });

  it('fails as truncated when the frames end well before the duration the validator measured', async () => {
    const stream = sliceMp3({
      ...{ input: mp3, outDir, cuts: listed(CUTS), lookahead: 8, maxDurationS: 3600, expectedDurationS: 60 },
      ...{ signal: new AbortController().signal, logger },
    });
    await expect(drain(stream)).rejects.toMatchObject({ code: 'MEDIA_CORRUPT', details: { reason: 'truncated' } });
  });

  it('stops at maxDurationS', async () => {
    const chunks = await drain(
      sliceMp3({
        ...{ input: mp3, outDir, cuts: listed(CUTS), lookahead: 8, maxDurationS: 10 },
        ...{ signal: new AbortController().signal, logger },
      }),
    );
    expect(chunks).toHaveLength(2);
    const end = (chunks[1]?.startS ?? 0) + (chunks[1]?.durationS ?? 0);
    expect(end).toBeGreaterThanOrEqual(10);
    expect(end).toBeLessThan(10 + FRAME_S + 1e-6);
  });
});
