import { execFileSync } from 'node:child_process';
import type { MediaProbe } from '../../src/chunker/types.ts';

/** ffmpeg, quiet unless it fails (then its stderr is in the thrown error). */
export function ffmpegQuiet(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** A sweep of `seconds` (so VBR frames vary in size) encoded to `file` as mp3 with the given output options. */
export function encodeSweep(file: string, options: string[], seconds: number): void {
  ffmpegQuiet(['-f', 'lavfi', '-i', `sine=f=300:beep_factor=4:d=${seconds}`, '-c:a', 'libmp3lame', ...options, file]);
}

/**
 * An APE v2 tag as taggers append it after the audio: a header (unless `withHeader` is false), one item holding
 * `value`, a footer.
 */
export function apeTag(value: Buffer = Buffer.from('Talk', 'latin1'), withHeader = true): Buffer {
  const item = Buffer.concat([Buffer.alloc(8), Buffer.from('Title\0', 'latin1'), value]);
  item.writeUInt32LE(value.length, 0);
  const part = (isHeader: boolean) => {
    const b = Buffer.alloc(32);
    b.write('APETAGEX', 0, 'latin1');
    b.writeUInt32LE(2000, 8);
    b.writeUInt32LE(item.length + 32, 12);
    b.writeUInt32LE(1, 16);
    b.writeUInt32LE(((withHeader ? 0x8000_0000 : 0) | (isHeader ? 0x2000_0000 : 0)) >>> 0, 20);
    return b;
  };
  return Buffer.concat([...(withHeader ? [part(true)] : []), item, part(false)]);
}

/** What ffprobe says of 10 s of 128 kb/s stereo mp3 (160,000 bytes). */
export const MP3_PROBE: MediaProbe = Object.freeze({
  formatName: 'mp3',
  demuxer: 'mp3',
  formatLongName: 'MP2/3 (MPEG audio layer 2/3)',
  durationS: 10,
  sizeBytes: 160_000,
  bitRate: 128_000,
  streamCount: 1,
  audioStreamCount: 1,
  videoStreamCount: 0,
  audio: { index: 0, codec: 'mp3', sampleRate: 44_100, channels: 2, bitRate: 128_000 },
});
