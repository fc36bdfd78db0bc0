/**
 * A file's bytes as the pieces they arrived in (an upload's socket reads), read in place: joining a 5 MB chunk
 * into one Buffer costs a copy and the garbage collector's time on every request, and reading its length needs
 * neither. joined() makes the one copy for what needs it whole (ffprobe's temp file, a test's transcript hook).
 */
export class Pieces {
  readonly length: number;
  readonly list: readonly Buffer[];
  /** Offset of each piece's first byte. */
  readonly #starts: number[] = [];
  /** The piece the last read was in: reads move forward, so the next one is found from there. */
  #at = 0;
  #joined: Buffer | null = null;

  constructor(list: readonly Buffer[]) {
    this.list = list;
    let length = 0;
    for (const piece of list) {
      this.#starts.push(length);
      length += piece.length;
    }
    this.length = length;
  }

  static of(buf: Buffer): Pieces {
    return new Pieces([buf]);
  }

  /** The index of the piece that holds byte `pos` (0 <= pos < length). */
  #pieceOf(pos: number): number {
    let i = this.#at;
    while (i > 0 && pos < (this.#starts[i] ?? 0)) i -= 1;
    while (i < this.list.length - 1 && pos >= (this.#starts[i + 1] ?? Infinity)) i += 1;
    this.#at = i;
    return i;
  }

  /** The byte at `pos`; 0 outside the bytes. */
  u8(pos: number): number {
    if (pos < 0 || pos >= this.length) return 0;
    const i = this.#pieceOf(pos);
    return this.list[i]?.[pos - (this.#starts[i] ?? 0)] ?? 0;
  }

  /** Four bytes at `pos`, big-endian, as an unsigned number (bytes outside read as 0). */
  u32(pos: number): number {
    if (pos >= 0 && pos + 4 <= this.length) {
      const i = this.#pieceOf(pos);
      const piece = this.list[i];
      const local = pos - (this.#starts[i] ?? 0);
      if (piece && local + 4 <= piece.length) return piece.readUInt32BE(local);
    }
    return ((this.u8(pos) << 24) | (this.u8(pos + 1) << 16) | (this.u8(pos + 2) << 8) | this.u8(pos + 3)) >>> 0;
  }

  /** `n` bytes at `pos` as latin1 text (short: for tags). */
  latin1(pos: number, n: number): string {
    let s = '';
    for (let k = 0; k < n; k++) s += String.fromCharCode(this.u8(pos + k));
    return s;
  }

  /** The bytes in one Buffer (copied once, then kept). */
  joined(): Buffer {
    this.#joined ??= this.list.length === 1 && this.list[0] ? this.list[0] : Buffer.concat(this.list, this.length);
    return this.#joined;
  }
}
