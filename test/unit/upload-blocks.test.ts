import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blockFileWriter, MAX_HELD_PIECES } from '../../src/http/routes/upload-blocks.ts';

const write = (w: Writable, piece: Buffer) =>
  new Promise<void>((resolve, reject) => w.write(piece, (err) => (err ? reject(err) : resolve())));
const end = (w: Writable) => new Promise<void>((resolve) => w.end(resolve));

describe('blockFileWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-blocks-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds at most MAX_HELD_PIECES pieces however small they are, so 1-byte reads cannot pin a block of objects', async () => {
    // A client sending one byte per TCP segment hands the route one Buffer per byte: held until 256 KiB, that
    // is 262,144 Buffer objects (~70 MB of heap) for one upload.
    const file = path.join(dir, 'upload');
    const w = blockFileWriter(file, 256 * 1024);
    const sent: number[] = [];
    for (let i = 0; i < 3 * MAX_HELD_PIECES; i++) {
      sent.push(i & 0xff);
      await write(w, Buffer.from([i & 0xff]));
    }
    // Each write's callback has run: what is not on disk yet is held.
    expect(3 * MAX_HELD_PIECES - (await stat(file)).size).toBeLessThan(MAX_HELD_PIECES);
    await end(w);
    expect((await readFile(file)).equals(Buffer.from(sent))).toBe(true);
  });

  it('writes every byte in order, the last short block included', async () => {
    const file = path.join(dir, 'upload');
    const w = blockFileWriter(file, 1000);
    const pieces = Array.from({ length: 37 }, (_, i) => Buffer.alloc(97 + i, i));
    for (const p of pieces) await write(w, p);
    await end(w);
    expect((await readFile(file)).equals(Buffer.concat(pieces))).toBe(true);
  });
});
