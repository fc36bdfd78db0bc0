import { open, type FileHandle } from 'node:fs/promises';
import { Mp3FrameWalker, type Mp3Walk, type Mp3Walked } from './mp3-frame-walker.ts';

/*
 * The duration of an mp3 measured by walking its frame headers in Node: what `ffmpeg -c copy -f null` reports
 * (the packets the demuxer finds end to end), without reading the audio data itself into ffmpeg. Only the plain
 * layout is walked, where the demuxer's answer is certain: an optional ID3v2 tag, an optional Xing/Info/VBRI
 * frame, audio frames of one sample rate each starting where the one before ends, and optionally an APE tag and
 * an ID3v1 tag at the end. Anything else (junk between frames, another layer, free format, a change of sample
 * rate, unknown trailing bytes) is left to ffmpeg's demuxer, which resyncs in its own way.
 */

export type { Mp3Walk } from './mp3-frame-walker.ts';

export interface Mp3WalkOptions {
  maxDurationS: number;
  signal?: AbortSignal;
}

/** Bytes read at a time; the headers in a block are read in one synchronous pass. */
const BLOCK = 256 * 1024;
/** The file's last bytes, where its tags are looked for. */
const TAIL = 64 * 1024;
/** Pieces of the tail held at most while an upload streams in (measureMp3Stream). */
const TAIL_PIECES = 128;
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

async function readAt(fh: FileHandle, buf: Buffer, pos: number): Promise<Buffer> {
  return buf.subarray(0, (await fh.read(buf, 0, buf.length, pos)).bytesRead);
}

/** Walks the frames of an mp3 file (see the top of this file); never throws for the file's content. */
export async function walkMp3Duration(file: string, options: Mp3WalkOptions): Promise<Mp3Walk> {
  const { maxDurationS, signal } = options;
  const walked = await walk(file, { limitS: maxDurationS + 1, ...(signal ? { signal } : {}) });
  // Read up to where the audio ends and no further, the walker always knows the boundary before it.
  return walked?.walk ?? { ok: false, reason: 'the walk lost its place', atByte: 0 };
}

/**
 * The byte offset of the first audio frame that starts at or after `atS` on the demuxer's timeline, or null when
 * the walk is unsure of the layout or the audio ends before: where a decoder can start reading to hear `atS` on
 * (`ffmpeg -skip_initial_bytes`), without ffmpeg's seek by time, which reads an mp3 from the start.
 */
export async function mp3ByteAt(file: string, atS: number, signal?: AbortSignal): Promise<number | null> {
  const walked = await walk(file, { limitS: atS + 1, ...(signal ? { signal } : {}) });
  // Found before where the walk refused (junk after it, a cut-off last frame) is found all the same.
  return walked?.byteAt(atS) ?? null;
}

/** Reads the file's audio (up to where its tags begin) into a walker, a block at a time, until the walker stops. */
async function walk(file: string, options: { limitS: number; signal?: AbortSignal }): Promise<Mp3Walked | null> {
  const fh = await open(file, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    const buf = Buffer.alloc(BLOCK);
    const tailBytes = Math.min(fileBytes, TAIL);
    const end = audioEndBefore(
      Buffer.from(await readAt(fh, buf.subarray(0, tailBytes), fileBytes - tailBytes)),
      fileBytes,
    );
    const walker = new Mp3FrameWalker({ limitS: options.limitS });
    for (let pos = 0; pos < end && !walker.done;) {
      // The caller's ffmpeg path then answers the cancellation as it does its own.
      if (options.signal?.aborted) return { walk: { ok: false, reason: 'cancelled', atByte: pos }, byteAt: () => null };
      const view = await readAt(fh, buf.subarray(0, Math.min(BLOCK, end - pos)), pos);
      if (view.length === 0) break;
      walker.push(view);
      pos += view.length;
    }
    return walker.finish(end);
  } finally {
    await fh.close();
  }
}

/** The frame walk of an mp3 fed as its bytes stream in (an upload), answered when the last one is in. */
export interface Mp3StreamMeasure {
  push(piece: Buffer): void;
  /**
   * What walkMp3Duration gives for the bytes pushed, and the end window's byte as mp3ByteAt finds it (undefined:
   * ask the file); null when the walk cannot say without the file (it ran on far past where the audio ends).
   */
  result(): (Mp3Walked & { bytes: number }) | null;
}

export function measureMp3Stream(options: Pick<Mp3WalkOptions, 'maxDurationS'>): Mp3StreamMeasure {
  const walker = new Mp3FrameWalker({ limitS: options.maxDurationS + 1 });
  // The last pieces, at least TAIL bytes of them: the tags at the end say where the audio ends.
  const tail: Buffer[] = [];
  let tailBytes = 0;
  let bytes = 0;
  return {
    push(piece) {
      bytes += piece.length;
      walker.push(piece);
      tail.push(piece);
      tailBytes += piece.length;
      while (tail.length > 1 && tailBytes - (tail[0]?.length ?? 0) >= TAIL) tailBytes -= tail.shift()?.length ?? 0;
      if (tail.length > TAIL_PIECES) {
        // Small pieces (a client sending a byte per TCP segment) are joined: TAIL of them would be ~20 MB of heap.
        const joined = Buffer.concat(tail);
        const kept = joined.subarray(Math.max(0, joined.length - TAIL));
        tail.splice(0, tail.length, kept);
        tailBytes = kept.length;
      }
    },
    result() {
      const last = Buffer.concat(tail);
      const walked = walker.finish(audioEndBefore(last.subarray(Math.max(0, last.length - TAIL)), bytes));
      return walked === null ? null : { ...walked, bytes };
    },
  };
}
