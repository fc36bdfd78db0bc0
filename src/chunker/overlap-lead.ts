import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { readMp3Layout } from './mp3-frames.ts';
import type { ChunkStream, SlicedChunk } from './types.ts';

/** Where the samples of a PCM WAV file are, and how they are laid out. */
export interface WavLayout {
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  blockAlign: number;
  byteRate: number;
  dataOffset: number;
  dataBytes: number;
}

/** Pure: the layout of a PCM WAV from its first bytes (enough to hold every chunk before `data`). */
export function parseWavHeader(head: Buffer, fileBytes: number): WavLayout | null {
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE')
    return null;
  let pos = 12;
  let fmt: Omit<WavLayout, 'dataOffset' | 'dataBytes'> | null = null;
  while (pos + 8 <= head.length) {
    const id = head.toString('latin1', pos, pos + 4);
    const size = head.readUInt32LE(pos + 4);
    if (id === 'fmt ' && pos + 24 <= head.length) {
      // Format 1: integer PCM; anything else would not be joined by copying bytes.
      if (head.readUInt16LE(pos + 8) !== 1) return null;
      fmt = {
        channels: head.readUInt16LE(pos + 10),
        sampleRate: head.readUInt32LE(pos + 12),
        byteRate: head.readUInt32LE(pos + 16),
        blockAlign: head.readUInt16LE(pos + 20),
        bitsPerSample: head.readUInt16LE(pos + 22),
      };
    } else if (id === 'data') {
      if (!fmt || fmt.blockAlign === 0) return null;
      const dataOffset = pos + 8;
      // A size ffmpeg could not patch (0 or 0xFFFFFFFF) means "to the end of the file".
      const dataBytes =
        size === 0 || size === 0xffff_ffff ? fileBytes - dataOffset : Math.min(size, fileBytes - dataOffset);
      return { ...fmt, dataOffset, dataBytes: dataBytes - (dataBytes % fmt.blockAlign) };
    }
    pos += 8 + size + (size % 2);
  }
  return null;
}

/** Pure: a canonical 44-byte PCM WAV header for `dataBytes` of samples. */
export function wavHeader(l: Omit<WavLayout, 'dataOffset' | 'dataBytes'>, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(l.channels, 22);
  h.writeUInt32LE(l.sampleRate, 24);
  h.writeUInt32LE(l.byteRate, 28);
  h.writeUInt16LE(l.blockAlign, 32);
  h.writeUInt16LE(l.bitsPerSample, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

const HEAD_BYTES = 4096;

async function readLayout(file: string): Promise<WavLayout> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEAD_BYTES, 0);
    const layout = parseWavHeader(head.subarray(0, bytesRead), (await fh.stat()).size);
    if (!layout) throw new AppError('INTERNAL', `not a PCM WAV chunk: ${file}`);
    return layout;
  } finally {
    await fh.close();
  }
}

async function readTail(file: string, l: WavLayout, overlapS: number): Promise<Buffer> {
  const want = Math.min(l.dataBytes, Math.floor((overlapS * l.byteRate) / l.blockAlign) * l.blockAlign);
  const buf = Buffer.alloc(want);
  const fh = await open(file, 'r');
  try {
    await fh.read(buf, 0, want, l.dataOffset + l.dataBytes - want);
  } finally {
    await fh.close();
  }
  return buf;
}

export interface OverlapLeadOptions {
  /** Seconds of the previous chunk's end put in front of each chunk after the first. */
  overlapS: number;
  logger: Logger;
}

/** A chunk file's last `overlapS` as bytes that can go in front of the next one, and what they must match. */
interface Tail {
  bytes: Buffer;
  seconds: number;
  /** Chunks join only when their layout is the same (sample rate, and for WAV the sample size). */
  layout: string;
}

/** How one chunk format is read for its tail and written with a lead in front. */
interface LeadFormat {
  /** The file's own tail, and how to write the file with another chunk's tail in front of it to `out`. */
  read(file: string, overlapS: number): Promise<{ tail: Tail; join(lead: Tail, out: string): Promise<void> }>;
}

const wavLead: LeadFormat = {
  async read(file, overlapS) {
    const layout = await readLayout(file);
    const bytes = await readTail(file, layout, overlapS);
    return {
      tail: { bytes, seconds: bytes.length / layout.byteRate, layout: `wav:${layout.byteRate}:${layout.blockAlign}` },
      async join(lead, out) {
        const w = createWriteStream(out);
        w.write(wavHeader(layout, lead.bytes.length + layout.dataBytes));
        w.write(lead.bytes);
        const body = { start: layout.dataOffset, end: layout.dataOffset + layout.dataBytes - 1 };
        await pipeline(createReadStream(file, body), w);
      },
    };
  },
};

/**
 * mp3 chunks carry their lead as whole frames copied from the end of the chunk before: frames join end to end
 * without decoding, so a chunk stream-copied from an mp3 upload stays a copy. The joined file drops the chunk's
 * own tag and Xing/Info frame (whose frame count would no longer be true); a CBR stream needs neither.
 */
const mp3Lead: LeadFormat = {
  async read(file, overlapS) {
    const { frames, audioStart, audioEnd } = await readMp3Layout(file);
    const sampleRate = frames.sampleRates[0] ?? 0;
    let bytes = Buffer.alloc(0);
    let seconds = 0;
    if (frames.length > 0) {
      const want = Math.max(1, Math.round((overlapS * sampleRate) / (frames.samples[0] ?? 0)));
      const first = Math.max(0, frames.length - want);
      for (let i = first; i < frames.length; i++) seconds += frames.seconds(i);
      const from = frames.offsets[first] ?? 0;
      bytes = Buffer.alloc(audioEnd - from);
      const fh = await open(file, 'r');
      try {
        await fh.read(bytes, 0, bytes.length, from);
      } finally {
        await fh.close();
      }
    }
    return {
      tail: { bytes, seconds, layout: `mp3:${sampleRate}` },
      async join(lead, out) {
        const w = createWriteStream(out);
        w.write(lead.bytes);
        await pipeline(createReadStream(file, { start: audioStart, end: Math.max(audioStart, audioEnd) - 1 }), w);
      },
    };
  },
};

/** The formats whose chunks can carry overlap, by file extension: their audio joins without re-encoding. */
const LEAD_FORMATS: Record<string, LeadFormat> = { '.wav': wavLead, '.mp3': mp3Lead };

/** Whether chunks of this format can start with the end of the one before (see withOverlap). */
export function carriesOverlap(format: string): boolean {
  return `.${format}` in LEAD_FORMATS;
}

/**
 * Chunks (PCM WAV or mp3), each after the first starting `overlapS` before its cut: the previous chunk's last
 * samples or frames (kept in memory when it passes, a few hundred KB at most) are written in front of the chunk's
 * own. The segment muxer cannot make overlapping files; joining costs one copy of the chunk file on disk, no
 * ffmpeg. A chunk's `leadS` says how much of its audio is the previous chunk's; `startS`/`durationS` stay its own.
 */
export function withOverlap(inner: ChunkStream, opts: OverlapLeadOptions): ChunkStream {
  if (!(opts.overlapS > 0)) return inner;
  const chunks: AsyncIterable<SlicedChunk> = {
    async *[Symbol.asyncIterator]() {
      let tail: Tail | null = null;
      for await (const chunk of inner.chunks) {
        const format = LEAD_FORMATS[path.extname(chunk.path)];
        if (!format) throw new AppError('INTERNAL', `chunk format cannot carry overlap: ${chunk.path}`);
        const own = await format.read(chunk.path, opts.overlapS);
        let out = chunk;
        if (tail && tail.bytes.length > 0 && tail.layout === own.tail.layout) {
          const joined = `${chunk.path}.lead${path.extname(chunk.path)}`;
          try {
            await own.join(tail, joined);
            await rename(joined, chunk.path);
          } catch (err) {
            await rm(joined, { force: true });
            throw err;
          }
          out = { ...chunk, bytes: (await stat(chunk.path)).size, leadS: tail.seconds };
          opts.logger.debug({ chunk: chunk.index, leadS: out.leadS }, 'overlap put in front of the chunk');
        }
        tail = own.tail;
        yield out;
      }
    },
  };
  return { chunks, done: inner.done, release: (i) => inner.release(i) };
}
