import { describe, expect, it } from 'vitest';
import { Mp3FrameRun } from '../../src/chunker/mp3-frame-run.ts';

/** The run's frames as plain tuples: [offset, size, samples, sampleRate]. */
const rows = (run: Mp3FrameRun): number[][] =>
  Array.from({ length: run.length }, (_, i) => [
    run.offsets[i] ?? NaN,
    run.sizes[i] ?? NaN,
    run.samples[i] ?? NaN,
    run.sampleRates[i] ?? NaN,
  ]);

describe('Mp3FrameRun', () => {
  it('holds frames in order as columns, up to its capacity', () => {
    const run = new Mp3FrameRun(3);
    expect([run.length, run.capacity]).toEqual([0, 3]);
    run.push(475, 417, 1152, 44_100);
    run.push(892, 418, 1152, 44_100);
    run.push(1310, 1441, 1152, 32_000); // the largest layer III frame: 320 kb/s at 32 kHz, padded
    expect(rows(run)).toEqual([
      [475, 417, 1152, 44_100],
      [892, 418, 1152, 44_100],
      [1310, 1441, 1152, 32_000],
    ]);
    expect(() => run.push(2751, 417, 1152, 44_100)).toThrow(RangeError);
    expect(run.length).toBe(3);
  });

  it('keeps offsets past 4 GiB exact and gives each frame its end and seconds', () => {
    const run = new Mp3FrameRun(2);
    const far = 5 * 2 ** 30 + 7;
    run.push(far, 417, 1152, 44_100);
    run.push(far + 417, 48, 576, 12_000); // MPEG-2.5 at 8 kb/s, 12 kHz: the smallest frame
    expect(run.offsets[0]).toBe(far);
    expect(run.end(0)).toBe(far + 417);
    expect(run.end(1)).toBe(far + 465);
    // The same double as samples / sampleRate, which the slicer's times are sums of.
    expect(run.seconds(0)).toBe(1152 / 44_100);
    expect(run.seconds(1)).toBe(576 / 12_000);
  });

  it('concatenates runs into one of exactly their frames, leaving their unused room out', () => {
    const a = new Mp3FrameRun(4);
    a.push(10, 417, 1152, 44_100);
    a.push(427, 418, 1152, 44_100);
    const b = new Mp3FrameRun(4);
    b.push(845, 417, 1152, 44_100);
    const all = Mp3FrameRun.concat([a, new Mp3FrameRun(2), b]);
    expect([all.length, all.capacity]).toEqual([3, 3]);
    expect(rows(all)).toEqual([
      [10, 417, 1152, 44_100],
      [427, 418, 1152, 44_100],
      [845, 417, 1152, 44_100],
    ]);
    expect(Mp3FrameRun.concat([]).length).toBe(0);
  });
});
