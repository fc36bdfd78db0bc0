import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MP3_FRAMES_BLOCK, MP3_RUN_FRAMES, mp3FrameRuns, readMp3Layout } from '../../src/chunker/mp3-frames.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-mp3-runs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An MPEG-1 layer III frame at 128 kb/s, 44.1 kHz: 417 bytes, 418 with the padding bit. */
function frame(padding: boolean, body = ''): Buffer {
  const f = Buffer.alloc(padding ? 418 : 417);
  f.set([0xff, 0xfb, padding ? 0x92 : 0x90, 0x00]);
  f.write(body, 36, 'latin1');
  return f;
}

describe('mp3FrameRuns', () => {
  it('finds the audio frames across block boundaries: tag, Info frame, junk and trailing tag left out', async () => {
    const id3 = Buffer.concat([Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x14', 'latin1'), Buffer.alloc(20)]);
    const parts: Buffer[] = [id3, frame(false, 'Info')];
    const expected: number[] = [];
    let offset = id3.length + 417;
    // The file spans two and a half blocks, frames straddling their ends.
    const frames = Math.ceil((2.5 * MP3_FRAMES_BLOCK) / 417);
    for (let i = 0; i < frames; i++) {
      if (i === 700) {
        parts.push(Buffer.alloc(37)); // junk between two frames
        offset += 37;
      }
      const f = frame(i % 3 === 0);
      parts.push(f);
      // A frame is confirmed by the header after it: the one before the junk and the last one (before the tag) are
      // not, and are left out as unsure.
      if (i !== 699 && i !== frames - 1) expected.push(offset);
      offset += f.length;
    }
    parts.push(Buffer.concat([Buffer.from('TAG', 'latin1'), Buffer.alloc(125)]));
    const file = path.join(dir, 'synthetic.mp3');
    writeFileSync(file, Buffer.concat(parts));

    const runs: number[][] = [];
    for await (const run of mp3FrameRuns(file)) runs.push([...run.offsets.subarray(0, run.length)]);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.flat()).toEqual(expected);
    const layout = await readMp3Layout(file);
    expect(layout.audioStart).toBe(expected[0]);
    expect(layout.audioEnd).toBe(offset - 417);
    expect(layout.frames.length).toBe(expected.length);
    expect(layout.frames.samples.subarray(0, layout.frames.length).every((n) => n === 1152)).toBe(true);
    expect(layout.frames.sampleRates.subarray(0, layout.frames.length).every((n) => n === 44_100)).toBe(true);
  });

  it('splits a low-bitrate block into runs of at most MP3_RUN_FRAMES frames (what a reader ahead holds is runs)', async () => {
    // MPEG-2.5 layer III, 8 kb/s, 12 kHz, mono: 48-byte frames, 21,845 in one block read.
    const small = Buffer.alloc(48);
    small.set([0xff, 0xe3, 0x14, 0xc0]);
    const count = Math.ceil((1.5 * MP3_FRAMES_BLOCK) / 48);
    const file = path.join(dir, 'low-bitrate.mp3');
    writeFileSync(file, Buffer.concat(Array.from({ length: count }, () => small)));

    const runs: number[] = [];
    let frames = 0;
    for await (const run of mp3FrameRuns(file)) {
      runs.push(run.length);
      frames += run.length;
      expect(run.capacity).toBeLessThanOrEqual(MP3_RUN_FRAMES);
      expect(run.sizes.subarray(0, run.length).every((n) => n === 48)).toBe(true);
      expect(run.samples.subarray(0, run.length).every((n) => n === 576)).toBe(true);
      expect(run.sampleRates.subarray(0, run.length).every((n) => n === 12_000)).toBe(true);
    }
    expect(frames).toBe(count);
    // 56 KiB a run for the slicer's 8 runs ahead and the one it cuts (21,845 frames a run without the split).
    expect(Math.max(...runs)).toBeLessThanOrEqual(4096);
    expect(Math.max(...runs)).toBeLessThanOrEqual(MP3_RUN_FRAMES);
  });
});
