import { describe, expect, it } from 'vitest';
import { piecesFor } from '../../src/chunker/byte-cap.ts';
import { parseWavHeader, wavHeader } from '../../src/chunker/overlap-lead.ts';

const MiB = 1024 * 1024;

describe('piecesFor', () => {
  it('keeps a chunk under the cap whole and cuts a larger one into pieces filling at most 90 % of it', () => {
    expect(piecesFor(25 * MiB, 25 * MiB)).toBe(1);
    expect(piecesFor(25 * MiB + 1, 25 * MiB)).toBe(2);
    expect(piecesFor(106_000_000, 25 * MiB)).toBe(5);
    expect(piecesFor(10, Infinity)).toBe(1);
  });
});

describe('wav headers', () => {
  const layout = { channels: 1, sampleRate: 16_000, bitsPerSample: 16, blockAlign: 2, byteRate: 32_000 };

  it('round-trips a canonical header', () => {
    const h = wavHeader(layout, 64_000);
    expect(parseWavHeader(h, 44 + 64_000)).toEqual({ ...layout, dataOffset: 44, dataBytes: 64_000 });
  });

  it('skips chunks before data (an ffmpeg LIST tag) and trusts the file size over an unpatched data size', () => {
    const h = wavHeader(layout, 0);
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([4, 0, 0, 0]), Buffer.from('INFO')]);
    const withList = Buffer.concat([h.subarray(0, 36), list, h.subarray(36)]);
    withList.writeUInt32LE(0xffff_ffff, withList.length - 4);
    expect(parseWavHeader(withList, withList.length + 1001)).toMatchObject({ dataOffset: 56, dataBytes: 1000 });
  });

  it('refuses what is not integer PCM in RIFF/WAVE', () => {
    const float = wavHeader(layout, 10);
    float.writeUInt16LE(3, 20);
    expect(parseWavHeader(float, 54)).toBeNull();
    expect(parseWavHeader(Buffer.from('not a wav file at all, no'), 100)).toBeNull();
  });
});
