import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/**
 * Pieces held at most, however few bytes they hold: a client sending a byte per TCP segment hands the route a Buffer
 * per byte, and 256 KiB of them is ~70 MB of heap for one upload. 1024 is also what one writev takes (IOV_MAX).
 */
export const MAX_HELD_PIECES = 1024;

/**
 * A new file (created as with flags 'wx': never one that exists) written from a stream in blocks of at least
 * `blockBytes` (or of MAX_HELD_PIECES pieces): the pieces are gathered and written with one writev, not copied.
 * A write per 64 KiB socket read is a thread-pool job and a wake-up each, which on a busy machine takes the core
 * from the event loop receiving the body; copying them into blocks instead costs a copy of every upload and, for
 * a big one, tens of MB of garbage the collector is slow to return.
 */
export function blockFileWriter(path: string, blockBytes: number): Writable {
  let fh: FileHandle | null = null;
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = async (): Promise<void> => {
    const pieces = held;
    held = [];
    heldBytes = 0;
    if (fh !== null && pieces.length > 0) await writevAll(fh, pieces);
  };
  const close = async (): Promise<void> => {
    const open = fh;
    fh = null;
    await open?.close();
  };
  return new Writable({
    construct(cb) {
      open(path, 'wx').then((handle) => {
        fh = handle;
        cb();
      }, cb);
    },
    write(chunk: Buffer, _enc, cb) {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < blockBytes && held.length < MAX_HELD_PIECES) return cb();
      flush().then(() => cb(), cb);
    },
    final(cb) {
      flush()
        .then(close)
        .then(() => cb(), cb);
    },
    destroy(err, cb) {
      held = [];
      close().then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
}

/** writev may write less than asked (as write may): the rest is written until all of it is. */
async function writevAll(fh: FileHandle, pieces: Buffer[]): Promise<void> {
  let left = pieces;
  while (left.length > 0) {
    let { bytesWritten } = await fh.writev(left);
    const rest: Buffer[] = [];
    for (const piece of left) {
      if (bytesWritten >= piece.length) bytesWritten -= piece.length;
      else {
        rest.push(piece.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    left = rest;
  }
}
