import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { countMp3Frames } from './mp3.ts';
import type { Pieces } from './pieces.ts';

const execFileAsync = promisify(execFile);

/** Length of one fake verbose_json segment; a file gets ceil(duration / SEGMENT_S) of them (at least one). */
export const SEGMENT_S = 5;

export interface FakeSegment {
  start: number;
  end: number;
  text: string;
}

export interface FakeTranscript {
  /** `chunk-<first 8 hex of the sha1 of the file bytes>`: names the audio a text came from. */
  tag: string;
  /** The segment texts joined by one space. */
  text: string;
  segments: FakeSegment[];
}

export function sha1Hex(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/**
 * The fake server's deterministic transcript of some audio: segments of equal length spread over the whole
 * duration, segment i reading `chunk-<sha8>-<i>`. A test can compute it from a chunk file's bytes, or find
 * the chunk a text came from through the request log's sha1.
 */
export function fakeTranscript(bytesOrSha1: Uint8Array | string, durationS: number): FakeTranscript {
  const sha1 = typeof bytesOrSha1 === 'string' ? bytesOrSha1 : sha1Hex(bytesOrSha1);
  const tag = `chunk-${sha1.slice(0, 8)}`;
  const n = Math.max(1, Math.ceil(durationS / SEGMENT_S));
  const segments = Array.from({ length: n }, (_, i) => ({
    start: round3((i * durationS) / n),
    end: round3(((i + 1) * durationS) / n),
    text: `${tag}-${i}`,
  }));
  return { tag, text: segments.map((s) => s.text).join(' '), segments };
}

/** Duration from a RIFF/WAVE header; null when the bytes are not a WAV this parser understands. */
export function wavDurationS(buf: Buffer): number | null {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') return null;
  let byteRate = 0;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ' && body + 12 <= buf.length) byteRate = buf.readUInt32LE(body + 8);
    if (id === 'data') {
      if (byteRate <= 0) return null;
      // Streamed WAVs (ffmpeg writing to a pipe) leave the size at 0 or 0xFFFFFFFF: use what is there.
      const available = buf.length - body;
      const dataBytes = size === 0 || size === 0xffffffff || size > available ? available : size;
      return dataBytes / byteRate;
    }
    offset = body + size + (size % 2);
  }
  return null;
}

/**
 * Duration by ffprobe (mp3, flac, ogg, m4a...); null when it cannot tell. Through a temp file because
 * ffprobe reports no duration for an mp3 read from a pipe.
 */
export async function probeDurationS(audio: Pieces): Promise<number | null> {
  const dir = await mkdtemp(path.join(tmpdir(), 'fake-openai-'));
  try {
    const file = path.join(dir, 'audio');
    await writeFile(file, audio.list);
    const { stdout } = await execFileAsync('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      file,
    ]);
    const d = Number(stdout.trim());
    return stdout.trim() !== '' && Number.isFinite(d) && d >= 0 ? d : null;
  } catch {
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How the fake reads a non-WAV file's duration (FakeOpenAIOptions.probeWith). */
export type DurationProbe = 'in-process' | 'ffprobe';

/** An mp3's frames counted (mp3.ts), in seconds to the microsecond as ffprobe prints them; null when uncertain. */
export function mp3DurationS(audio: Pieces): number | null {
  const count = countMp3Frames(audio);
  return count ? Math.round(count.seconds * 1e6) / 1e6 : null;
}

/**
 * A file's duration: a WAV's header, an mp3's frames counted, else ffprobe (everything the in-process readers
 * cannot tell for certain, garbage included: null is ffprobe's "cannot tell"). `ffprobe` asks ffprobe for every
 * non-WAV file, as the fake did before it counted mp3 frames (bench --fake-ffprobe measures that cost).
 */
export async function audioDurationS(audio: Pieces, probeWith: DurationProbe = 'in-process'): Promise<number | null> {
  const wav = audio.latin1(0, 4) === 'RIFF' ? wavDurationS(audio.joined()) : null;
  return wav ?? (probeWith === 'in-process' ? mp3DurationS(audio) : null) ?? (await probeDurationS(audio));
}
