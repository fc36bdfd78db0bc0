import { open } from 'node:fs/promises';
import { Mp3FrameRun } from './mp3-frame-run.ts';
import { id3v2Size } from './seek-exact.ts';

/*
 * MPEG audio layer III frames, as far as cutting and joining them goes: an mp3 stream is a run of frames that
 * each carry a fixed number of samples, so whole frames can be copied from any frame boundary and joined end to
 * end without decoding (the bit reservoir of a chunk's first frame then finds the frames before it).
 */

/** What a frame's header says: its size and the audio it holds (where frames are: Mp3FrameRun). */
export interface Mp3FrameHeader {
  size: number;
  /** 1152 (MPEG-1) or 576 (MPEG-2, 2.5) samples per channel. */
  samples: number;
  sampleRate: number;
}

const BITRATES_V1 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
/** By the header's version bits: 0 MPEG-2.5, 2 MPEG-2, 3 MPEG-1 (1 is reserved). */
const RATES: Record<number, readonly number[]> = {
  0: [11_025, 12_000, 8_000],
  2: [22_050, 24_000, 16_000],
  3: [44_100, 48_000, 32_000],
};

/** Pure: the layer III frame whose 4-byte header starts at `pos`, or null (no sync, another layer, free format). */
export function mp3FrameAt(buf: Buffer, pos: number): Mp3FrameHeader | null {
  if (pos + 4 > buf.length) return null;
  const b1 = buf[pos + 1] ?? 0;
  const b2 = buf[pos + 2] ?? 0;
  if (buf[pos] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const version = (b1 >> 3) & 3;
  if (version === 1 || ((b1 >> 1) & 3) !== 1) return null;
  const v1 = version === 3;
  const kbps = (v1 ? BITRATES_V1 : BITRATES_V2)[b2 >> 4];
  const sampleRate = RATES[version]?.[(b2 >> 2) & 3];
  // Bitrate index 0 is free format (its frame size is not in the header) and 15 is invalid.
  if (!kbps || !sampleRate) return null;
  const padding = (b2 >> 1) & 1;
  const size = Math.floor(((v1 ? 144_000 : 72_000) * kbps) / sampleRate) + padding;
  return { size, samples: v1 ? 1152 : 576, sampleRate };
}

/** Pure: whether a frame is the Xing/Info/VBRI header a muxer writes first (silent; it describes the file). */
export function isInfoFrame(frame: Buffer): boolean {
  // The tag sits right after the side information, within the first 40 bytes of the frame.
  const text = frame.subarray(0, 64).toString('latin1');
  return text.includes('Xing') || text.includes('Info') || text.includes('VBRI');
}

/**
 * Pure: the samples the demuxer skips at the start, per the Xing/Info frame `frame` (a whole frame): the encoder
 * delay of its LAME tag plus the decoder's 529, as ffmpeg's mp3 demuxer reads them (mp3_parse_info_tag), else 0;
 * null when the frame is not a Xing/Info frame at the place the demuxer looks (its side information's end).
 */
export function infoFrameSkip(frame: Buffer): number | null {
  const at = xingTagAt(frame);
  const tag = frame.toString('latin1', at, at + 4);
  if (tag === 'VBRI' || frame.toString('latin1', 36, 40) === 'VBRI') return 0;
  if (tag !== 'Xing' && tag !== 'Info') return null;
  // A frame too short to hold the tag's flags (a crafted 25-byte one): the demuxer reads them from the bytes after
  // it, so the caller must not take it for an info frame it understands (it gives way to ffmpeg instead).
  if (at + 8 > frame.length) return null;
  const flags = frame.readUInt32BE(at + 4);
  // Frame count, byte count, table of contents, quality: each there when its flag is set.
  const fields = [4, 4, 100, 4].reduce((sum, bytes, bit) => sum + (flags & (1 << bit) ? bytes : 0), 0);
  const version = at + 8 + fields;
  if (version + 24 > frame.length || !DELAY_WRITERS.has(frame.toString('latin1', version, version + 4))) return 0;
  // Encoder delay and padding, 12 bits each, after the version (9), revision, lowpass, peak (4), two gains (2+2),
  // flags and bitrate.
  return (frame.readUIntBE(version + 21, 3) >> 12) + 529;
}

/** Encoders whose info tag's delay ffmpeg's demuxer trusts. */
const DELAY_WRITERS = new Set(['LAME', 'Lavf', 'Lavc']);

/** Pure: where a Xing/Info tag sits in a frame: right after the side information, whose size is by version and mode. */
function xingTagAt(frame: Buffer): number {
  const mono = (frame[3] ?? 0) >> 6 === 3;
  const v1 = (((frame[1] ?? 0) >> 3) & 3) === 3;
  return 4 + (v1 ? (mono ? 17 : 32) : mono ? 9 : 17);
}

/** Seconds of audio in one frame at a sample rate (MPEG-1 rates carry 1152 samples, lower ones 576). */
export function mp3FrameSeconds(sampleRate: number): number {
  return (sampleRate >= 32_000 ? 1152 : 576) / sampleRate;
}

/**
 * Pure: `overlapS` as whole frames (at least one), so the lead put in front of a chunk is exactly as long as
 * the plan records (the stitcher reads the plan's overlap as each chunk's lead).
 */
export function mp3LeadSeconds(overlapS: number, sampleRate: number): number {
  const frame = mp3FrameSeconds(sampleRate);
  return Math.round(Math.max(1, Math.round(overlapS / frame)) * frame * 1e6) / 1e6;
}

/** Where an mp3 file's audio frames are: the first one after its tag and info frame, and the list. */
export interface Mp3Layout {
  /** Byte offset of the first audio frame (after an ID3v2 tag and a Xing/Info frame). */
  audioStart: number;
  /** Byte offset just past the last whole frame (trailing tags and a cut-off frame excluded). */
  audioEnd: number;
  frames: Mp3FrameRun;
}

/**
 * Bytes read at a time: the frames of a block are found in one synchronous pass over it. 1 MiB, not 256 KiB: each
 * read is a round trip through libuv's thread pool, which on a busy machine costs the event loop a context switch.
 */
export const MP3_FRAMES_BLOCK = 1024 * 1024;

/**
 * Frames in one run at most: a block's frames are split into runs of this many. What a reader holds is counted
 * in runs (the slicer's read-ahead), and a block of a low-bitrate file holds many more frames than one at
 * 128 kb/s (2,515): 21,845 of 48 bytes at 8 kb/s. A run is allocated at this size (56 KiB, see Mp3FrameRun).
 */
export const MP3_RUN_FRAMES = 4096;

/**
 * The frame at `at` when the next one follows it, or it ends the file exactly (`left`: bytes from `at` to the
 * end of the file): a lone sync pattern inside audio data is not a frame.
 */
function confirmedFrame(view: Buffer, at: number, left: number): Mp3FrameHeader | null {
  const frame = mp3FrameAt(view, at);
  if (!frame || frame.size > left) return null;
  if (frame.size === left) return frame;
  const next = at + frame.size;
  // The next header lies past the block: taken on trust (the block is reloaded at the next frame).
  return next + 4 > view.length || mp3FrameAt(view, next) !== null ? frame : null;
}

/**
 * The audio frames of an mp3 file in order, as the runs found in each block read (frame headers only are looked
 * at): an ID3v2 tag and a leading Xing/Info frame are skipped, and junk between frames by searching for the next
 * header whose successor is a header too. Ends at the last whole frame (a trailing tag or a cut-off frame is not
 * one). Runs (of at most MP3_RUN_FRAMES), not single frames: a 2 h file has ~275,000 frames, and one await per frame
 * cost seconds of CPU.
 */
export async function* mp3FrameRuns(file: string): AsyncGenerator<Mp3FrameRun> {
  const fh = await open(file, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    const head = Buffer.alloc(10);
    await fh.read(head, 0, 10, 0);
    let pos = Math.min(fileBytes, id3v2Size(head));
    let count = 0;
    const buf = Buffer.alloc(MP3_FRAMES_BLOCK);
    while (pos + 4 <= fileBytes) {
      const blockStart = pos;
      const view = buf.subarray(0, (await fh.read(buf, 0, MP3_FRAMES_BLOCK, pos)).bytesRead);
      let run = new Mp3FrameRun(MP3_RUN_FRAMES);
      let ended = false;
      // Up to the last header whose next 8 bytes are in the block; the block after starts there.
      while (pos + 4 <= fileBytes && pos + 8 <= blockStart + view.length) {
        const at = pos - blockStart;
        const frame = confirmedFrame(view, at, fileBytes - pos);
        if (!frame) {
          // Past the last frame only a trailing ID3v1 tag (128 bytes) is expected; elsewhere, junk to skip.
          if (count > 0 && pos + 128 >= fileBytes) {
            ended = true;
            break;
          }
          pos += 1;
          continue;
        }
        const info = count === 0 && at + frame.size <= view.length && isInfoFrame(view.subarray(at, at + frame.size));
        if (!info) {
          count += 1;
          run.push(pos, frame.size, frame.samples, frame.sampleRate);
        }
        pos += frame.size;
        if (run.length >= MP3_RUN_FRAMES) {
          yield run;
          run = new Mp3FrameRun(MP3_RUN_FRAMES);
        }
      }
      if (run.length > 0) yield run;
      if (ended) break;
      // A block too short for one more header (the file's last bytes): look at them as the old reader did.
      if (pos === blockStart) {
        const frame = confirmedFrame(view, 0, fileBytes - pos);
        if (!frame) break;
        count += 1;
        const last = new Mp3FrameRun(1);
        last.push(pos, frame.size, frame.samples, frame.sampleRate);
        yield last;
        pos += frame.size;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Where an mp3 file's audio frames are (see mp3FrameRuns). */
export async function readMp3Layout(file: string): Promise<Mp3Layout> {
  const runs: Mp3FrameRun[] = [];
  for await (const run of mp3FrameRuns(file)) runs.push(run);
  const frames = Mp3FrameRun.concat(runs);
  const last = frames.length - 1;
  return {
    audioStart: frames.offsets[0] ?? 0,
    audioEnd: last >= 0 ? frames.end(last) : 0,
    frames,
  };
}
