import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureMp3Stream, mp3ByteAt, walkMp3Duration } from '../../src/chunker/mp3-duration.ts';
import { apeTag, encodeSweep } from '../support/mp3-files.ts';

/*
 * The frame walk fed as an upload streams in (measureMp3Stream) against the walk of the stored file
 * (walkMp3Duration, mp3ByteAt, themselves checked against ffmpeg in mp3-duration.test.ts): the same answer for
 * every layout, in pieces of any size, or none where it cannot know without the file.
 */

const MAX_S = 600;
let dir: string;
const at = (name: string) => path.join(dir, name);

/** A sweep (so VBR frames vary in size), encoded with the given output options. */
async function encode(name: string, options: string[], seconds = 12): Promise<Buffer> {
  encodeSweep(at(name), options, seconds);
  return readFile(at(name));
}

/** The bytes pushed in pieces of `size` (or of varying sizes, from a fixed seed), then the stream's answer. */
function streamed(bytes: Buffer, size: number | 'varying', maxDurationS = MAX_S) {
  const measure = measureMp3Stream({ maxDurationS });
  let seed = 7;
  for (let pos = 0; pos < bytes.length;) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const n = size === 'varying' ? 1 + (seed % 9000) : size;
    measure.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return measure.result();
}

const files = new Map<string, Buffer>();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mp3-stream-'));
  const cbr = await encode('cbr.mp3', ['-b:a', '64k']);
  const id3v1 = Buffer.concat([Buffer.from('TAG', 'latin1'), Buffer.alloc(125)]);
  files.set('CBR with an Info frame', cbr);
  files.set('VBR with a Xing frame', await encode('vbr.mp3', ['-q:a', '4']));
  files.set('VBR without a Xing frame', await encode('noxing.mp3', ['-q:a', '4', '-write_xing', '0']));
  files.set('MPEG-2.5, 8 kHz mono', await encode('m8.mp3', ['-b:a', '16k', '-ac', '1', '-ar', '8000']));
  files.set(
    'a 20 KB ID3v2 tag',
    await encode('id3.mp3', ['-b:a', '64k', '-id3v2_version', '4', '-metadata', `title=${'T'.repeat(20_000)}`]),
  );
  files.set('an ID3v1 tag', Buffer.concat([cbr, id3v1]));
  files.set('an APE and an ID3v1 tag', Buffer.concat([cbr, apeTag(Buffer.from('Talk')), id3v1]));
  files.set('a cut-off last frame', cbr.subarray(0, Math.floor(cbr.length * 0.6) + 100));
  files.set('2 bytes after the last frame', Buffer.concat([cbr, Buffer.from([0xff, 0xfb])]));
  files.set(
    'junk between frames',
    Buffer.concat([cbr.subarray(0, 40_000), Buffer.from('not audio '.repeat(50)), cbr.subarray(40_000)]),
  );
  files.set('a change of sample rate', Buffer.concat([cbr, await encode('m22.mp3', ['-b:a', '32k', '-ar', '22050'])]));
  files.set('an ID3v2 tag longer than the file', Buffer.from('ID3\x04\x00\x00\x7f\x7f\x7f\x7f and nothing', 'latin1'));
  files.set('fewer than 10 bytes', Buffer.from([0xff, 0xfb, 0x90]));
  files.set('not an mp3', Buffer.from('RIFF....WAVEfmt '.repeat(100), 'latin1'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('measureMp3Stream', () => {
  it('gives the walk of the stored file for every layout, in pieces of any size', async () => {
    for (const [what, bytes] of files) {
      const file = at('as-stored.mp3');
      await writeFile(file, bytes);
      const stored = await walkMp3Duration(file, { maxDurationS: MAX_S });
      for (const size of [1, 3, 4, 417, 65_536, 'varying'] as const) {
        const result = streamed(bytes, size);
        expect({ what, size, walk: result?.walk }).toEqual({ what, size, walk: stored });
        expect(result?.bytes).toBe(bytes.length);
      }
    }
  });

  it("finds the end window's frame where mp3ByteAt does", async () => {
    for (const [what, bytes] of files) {
      const file = at('as-stored.mp3');
      await writeFile(file, bytes);
      const result = streamed(bytes, 'varying');
      const seconds = result?.walk.ok ? result.walk.seconds : 12;
      for (const atS of [0, 0.5, seconds - 5, seconds - 0.03, seconds, seconds + 1]) {
        expect({ what, atS, byte: result?.byteAt(atS) }).toEqual({ what, atS, byte: await mp3ByteAt(file, atS) });
      }
    }
  });

  it('says so when the audio runs past the limit, as the walk of the file does', async () => {
    const bytes = await encode('long.mp3', ['-b:a', '32k'], 30);
    await writeFile(at('long.mp3'), bytes);
    const result = streamed(bytes, 65_536, 10);
    expect(result?.walk).toMatchObject({ ok: true, overLimit: true });
    expect(result?.walk).toEqual(await walkMp3Duration(at('long.mp3'), { maxDurationS: 10 }));
  });

  it('answers nothing (the file is walked) when the frames run on far past where the audio ends', async () => {
    // An APE tag without a header whose item reads as frames: its size field (FF FB 10 00, little-endian) is a
    // 32 kb/s 44.1 kHz frame header, 104 bytes on, inside the value, an mp3 of such frames goes on. The stream's
    // walk runs on into them for ~10,000 frames, past the boundaries it keeps.
    const audio = await encode('short.mp3', ['-b:a', '64k'], 12);
    const frames = await encode(
      'in-tag.mp3',
      ['-b:a', '32k', '-ac', '1', '-write_xing', '0', '-id3v2_version', '0'],
      300,
    );
    const valueBytes = 0x0010_fbff;
    const value = Buffer.concat([Buffer.alloc(104 - 14), frames, Buffer.alloc(valueBytes)]).subarray(0, valueBytes);
    const tag = apeTag(value, false);
    expect([...tag.subarray(0, 4)]).toEqual([0xff, 0xfb, 0x10, 0x00]);
    const bytes = Buffer.concat([audio, tag]);
    await writeFile(at('ape-frames.mp3'), bytes);
    const stored = await walkMp3Duration(at('ape-frames.mp3'), { maxDurationS: MAX_S });
    expect(stored).toMatchObject({ ok: true });
    expect(stored).toEqual(await walkMp3Duration(at('short.mp3'), { maxDurationS: MAX_S }));
    expect(streamed(bytes, 65_536)).toBeNull();
  });
});
