import { createHash } from 'node:crypto';
import type http from 'node:http';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import { Pieces } from './pieces.ts';

/*
 * The multipart form of an upload, parsed as it streams in: the file part is hashed as it arrives and its bytes
 * kept as the pieces they came in, not copied (the whole body buffered, then copied by a second parser, a Blob, a
 * Buffer cost the fake ~25 ms of CPU and garbage a 5 MB request, on the cores the service runs on).
 */

/** The file part: what FormData.get('file') held as a File. */
export interface FormFile {
  name: string;
  /** Its bytes as they arrived (not joined: see Pieces). */
  audio: Pieces;
  sha1: string;
}

/** The parts in the order sent, as FormData kept them; a file part other than the one kept has no bytes. */
type Entry = { name: string; value: string } | { name: string; file: FormFile | null };

export class ParsedForm {
  readonly #entries: readonly Entry[];
  /** Bytes of the whole body. */
  readonly total: number;
  constructor(entries: readonly Entry[], total: number) {
    this.#entries = entries;
    this.total = total;
  }

  /** The first value under `name` when it is a text field and not empty (FormData.get, files and '' as null). */
  field(name: string): string | null {
    const e = this.#entries.find((x) => x.name === name);
    return e && 'value' in e && e.value !== '' ? e.value : null;
  }

  /** Every text value under `name`, in order (FormData.getAll without the files). */
  fields(name: string): string[] {
    return this.#entries.flatMap((e) => (e.name === name && 'value' in e ? [e.value] : []));
  }

  has(name: string): boolean {
    return this.#entries.some((e) => e.name === name);
  }

  /** The `file` part when the first part of that name is a file (a part with a filename). */
  get file(): FormFile | null {
    const e = this.#entries.find((x) => x.name === 'file');
    return e && 'file' in e ? e.file : null;
  }
}

export type FormRead =
  | { kind: 'form'; form: ParsedForm }
  /** Not a form the parser can read (content type, framing): the body was read to its end all the same. */
  | { kind: 'bad'; total: number }
  /** Over `limit`: the rest was read and dropped, so `total` is the whole body's size. */
  | { kind: 'oversize'; total: number }
  /** The client went away before the body ended. */
  | { kind: 'aborted'; total: number };

/**
 * Reads a request's multipart (or urlencoded) form as it arrives, keeping at most `limit` bytes of it: past that
 * the body is drained and counted, not parsed. The first `file` part is hashed and kept; other file parts are
 * dropped as they stream. Resolves once the body has ended (or the client left); never rejects.
 */
export function readForm(req: http.IncomingMessage, limit: number): Promise<FormRead> {
  return new Promise((resolve) => {
    const entries: Entry[] = [];
    let total = 0;
    let parser: BusboyInstance | null = null;
    let failed = false;
    let bodyEnded = false;
    let parsed = false;
    let settled = false;

    const settle = (read: FormRead): void => {
      if (settled) return;
      settled = true;
      resolve(read);
    };
    const decide = (): void => {
      if (!bodyEnded) return;
      if (total > limit) return settle({ kind: 'oversize', total });
      if (failed || !parser) return settle({ kind: 'bad', total });
      if (parsed) settle({ kind: 'form', form: new ParsedForm(entries, total) });
    };
    const fail = (): void => {
      failed = true;
      // Nothing more goes to the parser; the body is still read to its end, as the answer waits for that.
      parser = null;
      req.resume();
      decide();
    };

    try {
      parser = Busboy({
        headers: { ...req.headers, 'content-type': req.headers['content-type'] ?? '' },
        // Every part with a filename is a file, as FormData has it (not by content type).
        isPartAFile: (_name, _type, filename) => filename !== undefined,
        preservePath: true,
        // The body's limit bounds every part; busboy's own smaller defaults would cut fields short silently.
        limits: { fieldNameSize: limit, fieldSize: limit },
      });
    } catch {
      failed = true;
    }
    parser?.on('field', (name, value) => entries.push({ name, value }));
    parser?.on('file', (name, stream, filename) => {
      const keep = name === 'file' && !entries.some((e) => e.name === 'file');
      if (!keep) {
        entries.push({ name, file: null });
        stream.resume();
        stream.on('error', fail);
        return;
      }
      const hash = createHash('sha1');
      const pieces: Buffer[] = [];
      const entry: { name: string; file: FormFile | null } = { name, file: null };
      entries.push(entry);
      stream.on('data', (piece: Buffer) => {
        hash.update(piece);
        pieces.push(piece);
      });
      stream.on('end', () => {
        entry.file = { name: filename, audio: new Pieces(pieces), sha1: hash.digest('hex') };
      });
      stream.on('error', fail);
    });
    parser?.on('error', fail);
    parser?.on('finish', () => {
      parsed = true;
      decide();
    });

    req.on('data', (piece: Buffer) => {
      total += piece.length;
      if (total > limit) parser = null;
      if (!parser) return;
      if (!parser.write(piece)) {
        req.pause();
        parser.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      bodyEnded = true;
      if (parser && total <= limit) parser.end();
      decide();
    });
    req.on('close', () => {
      if (!req.complete) settle({ kind: 'aborted', total });
    });
    // An aborted upload also errors the request (ECONNRESET): 'close' follows and answers for it.
    req.on('error', () => undefined);
  });
}
