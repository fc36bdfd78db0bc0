import { open, type FileHandle } from 'node:fs/promises';
import { isInfoFrame, mp3FrameAt } from './mp3-frames.ts';
import { id3v2Size } from './seek-exact.ts';

/*
 * The duration of an mp3 measured by walking its frame headers in Node: what `ffmpeg -c copy -f null` reports
 * (the packets the demuxer finds end to end), without reading the audio data itself into ffmpeg. Only the plain
 * layout is walked, where the demuxer's answer is certain: an optional ID3v2 tag, an optional Xing/Info/VBRI
 * frame, audio frames of one sample rate each starting where the one before ends, and optionally an APE tag and
 * an ID3v1 tag at the end. Anything else (junk between frames, another layer, free format, a change of sample
 * rate, unknown trailing bytes) is left to ffmpeg's demuxer, which resyncs in its own way.
 */

export type Mp3Walk =
  | {
      ok: true;
      /** Seconds of audio in the frames walked (stopped a little past the limit). */
      seconds: number;
      frames: number;
      /** The frames go on past maxDurationS + 1 s: the file is too long, whatever its header says. */
      overLimit: boolean;
    }
  | { ok: false; reason: string; atByte: number };

export interface Mp3WalkOptions {
  maxDurationS: number;
  signal?: AbortSignal;
}

/** Bytes read at a time; the headers in a block are read in one synchronous pass. */
const BLOCK = 256 * 1024;
const ID3V1 = 128;
const APE_FOOTER = 32;

/** Pure: where the audio ends, given the file's last bytes (`tail`, ending at `fileBytes`): before an ID3v1 and APE tag. */
export function audioEndBefore(tail: Buffer, fileBytes: number): number {
  let end = fileBytes;
  const at = (fromEnd: number) => tail.length - (fileBytes - end) - fromEnd;
  if (at(ID3V1) >= 0 && tail.toString('latin1', at(ID3V1), at(ID3V1) + 3) === 'TAG') end -= ID3V1;
  const footer = at(APE_FOOTER);
  if (footer >= 0 && tail.toString('latin1', footer, footer + 8) === 'APETAGEX') {
    // The footer's size counts the items and the footer; bit 31 of the flags says a 32-byte header precedes them.
    const size = tail.readUInt32LE(footer + 12);
    const header = (tail.readUInt32LE(footer + 20) & 0x8000_0000) !== 0 ? APE_FOOTER : 0;
    end -= size + header;
  }
  return end;
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

async function readAt(fh: FileHandle, buf: Buffer, pos: number): Promise<Buffer> {
  return buf.subarray(0, (await fh.read(buf, 0, buf.length, pos)).bytesRead);
}

/** Walks the frames of an mp3 file (see the top of this file); never throws for the file's content. */
export function walkMp3Duration(file: string, options: Mp3WalkOptions): Promise<Mp3Walk> {
  return walk(file, { limitS: options.maxDurationS + 1, ...(options.signal ? { signal: options.signal } : {}) });
}

/**
 * The byte offset of the first audio frame that starts at or after `atS` on the demuxer's timeline, or null when
 * the walk is unsure of the layout or the audio ends before: where a decoder can start reading to hear `atS` on
 * (`ffmpeg -skip_initial_bytes`), without ffmpeg's seek by time, which reads an mp3 from the start.
 */
export async function mp3ByteAt(file: string, atS: number, signal?: AbortSignal): Promise<number | null> {
  const walked = await walk(file, { limitS: atS + 1, findS: atS, ...(signal ? { signal } : {}) });
  return walked.ok ? (walked.foundAt ?? null) : null;
}

async function walk(
  file: string,
  options: { limitS: number; findS?: number; signal?: AbortSignal },
): Promise<Mp3Walk & { foundAt?: number }> {
  const { limitS, findS } = options;
  const fh = await open(file, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    const buf = Buffer.alloc(BLOCK);
    const start = Math.min(fileBytes, id3v2Size(await readAt(fh, buf.subarray(0, 10), 0)));
    const tailBytes = Math.min(fileBytes, 64 * 1024);
    const end = audioEndBefore(
      Buffer.from(await readAt(fh, buf.subarray(0, tailBytes), fileBytes - tailBytes)),
      fileBytes,
    );
    const refuse = (reason: string, atByte: number): Mp3Walk => ({ ok: false, reason, atByte });
    if (end <= start) return refuse('no room for audio between the tags', start);

    let pos = start;
    let frames = 0;
    let samples = 0;
    let sampleRate = 0;
    let skip = 0;
    const seconds = () => Math.max(0, samples - skip) / sampleRate;
    while (pos < end) {
      // The caller's ffmpeg path then answers the cancellation as it does its own.
      if (options.signal?.aborted) return refuse('cancelled', pos);
      const blockStart = pos;
      const view = await readAt(fh, buf.subarray(0, Math.min(BLOCK, end - pos)), pos);
      // Every header in the block, the frame it starts ending inside the audio.
      while (pos + 4 <= blockStart + view.length) {
        const at = pos - blockStart;
        const frame = mp3FrameAt(view, at);
        if (!frame) return refuse('not a layer III frame header where the previous frame ends', pos);
        if (pos + frame.size > end) return refuse('the last frame is cut off', pos);
        if (sampleRate === 0) {
          sampleRate = frame.sampleRate;
          // The Xing/Info/VBRI frame describes the file and holds no audio, as the demuxer treats it; the encoder
          // delay its LAME tag names is not counted either (ffmpeg's figure starts after it).
          const whole = at + frame.size <= view.length ? view.subarray(at, at + frame.size) : null;
          const info = whole ? infoFrameSkip(whole) : null;
          if (info !== null) {
            skip = info;
            pos += frame.size;
            continue;
          }
          if (whole === null || isInfoFrame(whole)) return refuse('an info frame the demuxer may not read as one', pos);
        } else if (frame.sampleRate !== sampleRate) {
          return refuse('the sample rate changes', pos);
        }
        if (findS !== undefined && seconds() >= findS)
          return { ok: true, seconds: seconds(), frames, overLimit: false, foundAt: pos };
        frames += 1;
        samples += frame.samples;
        pos += frame.size;
        if (seconds() > limitS) return { ok: true, seconds: seconds(), frames, overLimit: true };
      }
      if (pos === blockStart) return refuse('fewer than 4 bytes left after the last frame', pos);
    }
    return { ok: true, seconds: sampleRate > 0 ? seconds() : 0, frames, overLimit: false };
  } finally {
    await fh.close();
  }
}
