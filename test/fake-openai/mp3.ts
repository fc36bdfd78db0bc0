import type { Pieces } from './pieces.ts';

/*
 * The fake provider's own reading of an mp3's length, in process (no ffprobe child): the frames counted end to
 * end. Written apart from the service's frame walker (src/chunker/mp3-*.ts) on purpose: a test double that shared
 * the code under test would agree with its mistakes.
 *
 * Only the plain layout is read, where the count is certain: ID3v2 tags, layer III frames of one MPEG version and
 * sample rate each starting where the one before ends, the first of them possibly a Xing/Info/VBRI frame (which
 * holds no audio), and nothing after the last frame but an ID3v1 tag. Anything else (another layer, free format,
 * junk between frames, a cut-off last frame, trailing bytes, a Xing frame count the frames do not match) gives
 * null, and the caller asks ffprobe as before.
 */

export interface Mp3Count {
  frames: number;
  samplesPerFrame: number;
  sampleRate: number;
  /** The frames counted: (frames x samplesPerFrame) / sampleRate. */
  seconds: number;
  /** Whether the first frame was a Xing/Info/VBRI frame (not counted). */
  infoFrame: boolean;
  /** Bytes of audio frames, the info frame included: from the end of the ID3v2 tags to the ID3v1 tag or the end. */
  audioBytes: number;
  /** The bitrate of the first frame, bits per second. */
  bitRate: number;
}

/** kbit/s by bitrate index (1..14) for MPEG-1 and for MPEG-2/2.5, layer III. */
const KBPS_MPEG1 = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const KBPS_MPEG2 = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
/** Hz by the header's version bits (3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5) and sample rate index (0..2). */
const HZ: ReadonlyMap<number, readonly number[]> = new Map([
  [3, [44_100, 48_000, 32_000]],
  [2, [22_050, 24_000, 16_000]],
  [0, [11_025, 12_000, 8_000]],
]);

interface Frame {
  /** The version bits and sample rate index: every frame of a plain stream has the same. */
  kind: number;
  bytes: number;
  samples: number;
  sampleRate: number;
  bitRate: number;
  /** Channel mode 3: one channel (the side information is shorter). */
  mono: boolean;
}

/** The layer III frame header at `at`, or null. */
function frameAt(buf: Pieces, at: number): Frame | null {
  if (at + 4 > buf.length) return null;
  const h = buf.u32(at);
  // 11 sync bits, then version (2), layer (2; 01 is layer III), protection, bitrate (4), rate (2), padding.
  if (h >>> 21 !== 0x7ff || ((h >>> 17) & 3) !== 1) return null;
  const version = (h >>> 19) & 3;
  const rates = HZ.get(version);
  const rateIndex = (h >>> 10) & 3;
  const bitrateIndex = (h >>> 12) & 15;
  const sampleRate = rates?.[rateIndex];
  const kbps = (version === 3 ? KBPS_MPEG1 : KBPS_MPEG2)[bitrateIndex - 1];
  if (sampleRate === undefined || kbps === undefined) return null;
  const samples = version === 3 ? 1152 : 576;
  const padding = (h >>> 9) & 1;
  return {
    kind: (version << 2) | rateIndex,
    bytes: Math.floor(((samples / 8) * kbps * 1000) / sampleRate) + padding,
    samples,
    sampleRate,
    bitRate: kbps * 1000,
    mono: ((h >>> 6) & 3) === 3,
  };
}

/** Where the ID3v2 tags before the audio end (0 when there is none); null when a tag runs past the bytes. */
function afterId3v2(buf: Pieces): number | null {
  let at = 0;
  while (at + 10 <= buf.length && buf.latin1(at, 3) === 'ID3') {
    // Four 7-bit ("syncsafe") bytes; a 10-byte footer when the flags say so.
    const size = buf.u32(at + 6);
    if ((size & 0x80808080) !== 0) return null;
    const footer = (buf.u8(at + 5) & 0x10) !== 0 ? 10 : 0;
    at += 10 + footer + ((size >> 3) & 0xfe00000) + ((size >> 2) & 0x1fc000) + ((size >> 1) & 0x3f80) + (size & 0x7f);
  }
  return at <= buf.length ? at : null;
}

/**
 * The frame count a Xing/Info or VBRI frame holds (null when it names none), or undefined when `frame` is no such
 * frame. The Xing tag follows the side information (17 or 32 bytes in MPEG-1, 9 or 17 below); VBRI sits at 36.
 */
function infoFrames(buf: Pieces, at: number, f: Frame): number | null | undefined {
  const xing = at + 4 + (f.kind >> 2 === 3 ? (f.mono ? 17 : 32) : f.mono ? 9 : 17);
  const tag = buf.latin1(xing, 4);
  if (tag === 'Xing' || tag === 'Info') {
    if (xing + 12 > at + f.bytes) return null;
    return (buf.u32(xing + 4) & 1) !== 0 ? buf.u32(xing + 8) : null;
  }
  if (buf.latin1(at + 36, 4) === 'VBRI' && at + 36 + 18 <= at + f.bytes) return buf.u32(at + 36 + 14);
  return undefined;
}

/** The frames of a plain mp3 counted (see the top of this file), or null when the layout is not that. */
export function countMp3Frames(buf: Pieces): Mp3Count | null {
  const start = afterId3v2(buf);
  if (start === null) return null;
  const end = buf.length - 128 >= start && buf.latin1(buf.length - 128, 3) === 'TAG' ? buf.length - 128 : buf.length;
  const first = frameAt(buf, start);
  if (!first || start + first.bytes > end) return null;
  const named = infoFrames(buf, start, first);
  let at = named === undefined ? start : start + first.bytes;
  let frames = 0;
  while (at < end) {
    const f = frameAt(buf, at);
    if (!f || f.kind !== first.kind || at + f.bytes > end) return null;
    frames += 1;
    at += f.bytes;
  }
  // A frame count that is not the frames' own: a file cut after its header was written.
  if (frames === 0 || (named !== undefined && named !== null && named !== frames)) return null;
  return {
    frames,
    samplesPerFrame: first.samples,
    sampleRate: first.sampleRate,
    seconds: (frames * first.samples) / first.sampleRate,
    infoFrame: named !== undefined,
    audioBytes: end - start,
    bitRate: first.bitRate,
  };
}
