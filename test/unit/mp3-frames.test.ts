import { describe, expect, it } from 'vitest';
import { isInfoFrame, mp3FrameAt, mp3FrameSeconds, mp3LeadSeconds } from '../../src/chunker/mp3-frames.ts';

/** A frame header: MPEG version bits, bitrate index, sample-rate index, padding bit; layer III, no CRC. */
function header(version: number, bitrate: number, rate: number, padding = 0): Buffer {
  return Buffer.from([0xff, 0xe0 | (version << 3) | (1 << 1) | 1, (bitrate << 4) | (rate << 2) | (padding << 1), 0xc4]);
}

describe('mp3 frame headers', () => {
  it('reads the size and samples of MPEG-1 and MPEG-2 layer III frames', () => {
    // 128 kb/s at 44.1 kHz: 144000 * 128 / 44100 = 417.96 -> 417 bytes, 418 with the padding byte.
    expect(mp3FrameAt(header(3, 9, 0), 0)).toEqual({ size: 417, samples: 1152, sampleRate: 44_100 });
    expect(mp3FrameAt(header(3, 9, 0, 1), 0)).toEqual({ size: 418, samples: 1152, sampleRate: 44_100 });
    // 32 kb/s at 16 kHz (MPEG-2): 72000 * 32 / 16000 = 144 bytes of 576 samples.
    expect(mp3FrameAt(header(2, 4, 2), 0)).toEqual({ size: 144, samples: 576, sampleRate: 16_000 });
  });

  it('refuses what is not a layer III frame with its size in the header', () => {
    expect(mp3FrameAt(Buffer.from([0x49, 0x44, 0x33, 0x04]), 0)).toBeNull(); // "ID3"
    expect(mp3FrameAt(header(3, 0, 0), 0)).toBeNull(); // free format
    expect(mp3FrameAt(header(3, 15, 0), 0)).toBeNull(); // invalid bitrate
    expect(mp3FrameAt(header(1, 9, 0), 0)).toBeNull(); // reserved version
    expect(mp3FrameAt(header(3, 9, 3), 0)).toBeNull(); // reserved sample rate
    const layer2 = header(3, 9, 0);
    layer2[1] = 0xfd;
    expect(mp3FrameAt(layer2, 0)).toBeNull();
    expect(mp3FrameAt(header(3, 9, 0).subarray(0, 3), 0)).toBeNull();
  });

  it('knows the Xing/Info frame a muxer writes first', () => {
    const frame = Buffer.alloc(417);
    header(3, 9, 0).copy(frame);
    expect(isInfoFrame(frame)).toBe(false);
    frame.write('Info', 36, 'latin1');
    expect(isInfoFrame(frame)).toBe(true);
  });
});

describe('mp3 lead length', () => {
  it('rounds the overlap to whole frames, at least one', () => {
    expect(mp3FrameSeconds(44_100)).toBeCloseTo(0.026122, 6);
    expect(mp3FrameSeconds(16_000)).toBe(0.036);
    expect(mp3LeadSeconds(2, 44_100)).toBe(Math.round(((77 * 1152) / 44_100) * 1e6) / 1e6);
    expect(mp3LeadSeconds(1.5, 16_000)).toBe(1.512);
    expect(mp3LeadSeconds(0.001, 16_000)).toBe(0.036);
  });
});
