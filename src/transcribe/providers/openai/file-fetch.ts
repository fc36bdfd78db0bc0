import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type OpenAI from 'openai';

// Not `import http from 'node:http'`: an ESM import of node:http reads all its exports, and the lazy WebSocket
// ones load Node's bundled undici (~12 MiB RSS for an idle service, docs/performance.md); the CommonJS object does not.
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

type FetchOptions = NonNullable<OpenAI.RequestOptions['fetchOptions']>;

/**
 * A `fetch` for the openai SDK that sends a chunk file without a fresh buffer per piece.
 *
 * Given the file as a Blob, the platform fetch reads it in 64 KiB pieces, each a new ArrayBuffer that is dead
 * once written but freed only by a GC; the pieces make little JS garbage, so GCs are rare and tens of MiB of
 * them waited in RSS with three chunks in flight (and glibc kept the freed blocks). Here the multipart body is
 * written by node:http from the file through one buffer per request, refilled only once the socket has taken
 * the previous piece (the write's callback): one request holds one piece, whatever the chunk's size, and the
 * buffer goes to the next request after it (see IDLE_PIECES).
 *
 * A request carries its file's path in its fetch options under `CHUNK_FILE` (see `chunkFileOptions`); its body
 * is the FormData the SDK built, whose one file entry is a Blob of that file: its name, type and size go into the
 * form, and that many bytes are read from the path (a file found shorter fails the request, as the platform
 * fetch's Blob read would). Every other request goes to the platform fetch unchanged.
 */
const CHUNK_FILE: unique symbol = Symbol('chunkscribe.chunkFile');

/**
 * Bytes per read and write: one piece in flight per request. 512 KiB rather than 64 KiB: a 300 s mp3 chunk went out
 * in ~75 reads and socket writes, each read a trip through libuv's thread pool that costs the event loop a context
 * switch, most of all on a busy machine; in 10 the service's own CPU per continuous 2 h job is ~10 % less on a quiet
 * machine (bench/trace.ts, c=1 990-1090 -> 880-910 ms, c=3 830-960 -> 780-820 ms) and ~25 % less under load (1 MiB
 * pieces). Not 1 MiB: c pieces in flight are c x that of RSS.
 */
export const PIECE_BYTES = 512 * 1024;

/** The per-request fetch options that make this fetch send `path` as the body's file entry. */
export function chunkFileOptions(path: string): FetchOptions {
  const options: FetchOptions = {};
  Object.defineProperty(options, CHUNK_FILE, { value: path, enumerable: true });
  return options;
}

/** The path a request's options carry, if any. */
function chunkFileOf(init: RequestInit | undefined): string | undefined {
  const v = (init as Record<symbol, unknown> | undefined)?.[CHUNK_FILE];
  return typeof v === 'string' ? v : undefined;
}

// The FormData encoding of the platform fetch (undici's extractBody), so the bytes on the wire are the same.
const escapeName = (s: string): string => s.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
const crlf = (s: string): string => s.replace(/\r?\n|\r/g, '\r\n');

type Part = { head: Buffer; file?: Blob };

/** The multipart parts of a form (text fields whole, the file as its header: its bytes come from disk). */
function encodeForm(form: FormData, boundary: string): { parts: Part[]; end: Buffer; length: number } {
  const parts: Part[] = [];
  for (const [name, value] of form) {
    const disposition = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(crlf(name))}"`;
    if (typeof value === 'string') {
      parts.push({ head: Buffer.from(`${disposition}\r\n\r\n${crlf(value)}\r\n`) });
    } else {
      const filename = value.name ? `; filename="${escapeName(value.name)}"` : '';
      const type = value.type || 'application/octet-stream';
      parts.push({ head: Buffer.from(`${disposition}${filename}\r\nContent-Type: ${type}\r\n\r\n`), file: value });
    }
  }
  if (parts.filter((p) => p.file).length !== 1) throw new TypeError('a chunk file request has exactly one file entry');
  const end = Buffer.from(`--${boundary}--\r\n`);
  const length = parts.reduce((n, p) => n + p.head.length + (p.file ? p.file.size + 2 : 0), end.length);
  return { parts, end, length };
}

function write(req: ClientRequest, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => req.write(bytes, (err) => (err ? reject(err) : resolve())));
}

/**
 * Idle piece buffers kept for the next requests. A fresh buffer per request was garbage outside V8's heap, which a
 * GC gives back only after tens of MiB of it: the service's peak RSS rose ~10 MiB (bench, pipeline c=1 and c=3).
 */
const IDLE_PIECES = 4;

/** Piece buffers reused across requests: one per request in flight, at most IDLE_PIECES kept between them. */
interface PiecePool {
  take(): Buffer;
  /** Only once no write holds it any more (its callback came). */
  give(buf: Buffer): void;
}

function createPiecePool(): PiecePool {
  const idle: Buffer[] = [];
  return {
    take: () => idle.pop() ?? Buffer.allocUnsafe(PIECE_BYTES),
    give: (buf) => {
      if (idle.length < IDLE_PIECES) idle.push(buf);
    },
  };
}

/** Writes `size` bytes of the file at `path` through one buffer, each piece only once the last is written. */
async function writeFile(req: ClientRequest, path: string, size: number, pieces: PiecePool): Promise<void> {
  const fh = await open(path, 'r');
  const buf = pieces.take();
  try {
    let sent = 0;
    while (sent < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - sent), sent);
      if (bytesRead === 0) throw new Error(`chunk file ${path} ended at ${sent} of ${size} bytes`);
      await write(req, buf.subarray(0, bytesRead));
      sent += bytesRead;
    }
  } finally {
    // Every write awaited has called back (or none was made): the socket no longer holds the buffer.
    pieces.give(buf);
    await fh.close();
  }
}

async function writeBody(req: ClientRequest, parts: Part[], end: Buffer, path: string, pieces: PiecePool) {
  for (const p of parts) {
    await write(req, p.head);
    if (p.file) {
      await writeFile(req, path, p.file.size, pieces);
      await write(req, Buffer.from('\r\n'));
    }
  }
  req.end(end);
}

/**
 * The most bytes of an answer read. The SDK reads an answer whole, as one string, before it parses it: a server that
 * answered without end (or with a few hundred MiB) grew the service by twice that per chunk in flight, up to V8's
 * string limit (~1 GiB of text, then 3 GiB of RSS for one chunk), before the request's timeout could stop it. An honest
 * answer is far smaller: verbose_json with word times for a chunk of 25 MiB (the most a request carries) is well
 * under 1 MiB.
 */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** The answer was cut off at MAX_ANSWER_BYTES: the server sent more (or declared more) than an answer can be. */
export class AnswerTooLargeError extends Error {
  readonly code = 'ANSWER_TOO_LARGE';
  constructor(limit: number) {
    super(`the provider's answer was larger than ${limit} bytes; it was cut off unread`);
    this.name = 'AnswerTooLargeError';
  }
}

/** Statuses whose answer has no body (a Response with one would throw). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/** Ends the answer with AnswerTooLargeError (its body's reader gets it) once more than `limit` bytes come or are declared. */
function capAnswer(res: IncomingMessage, limit: number): void {
  const tooLarge = () => res.destroy(new AnswerTooLargeError(limit));
  if (Number(res.headers['content-length']) > limit) {
    tooLarge();
    return;
  }
  let bytes = 0;
  res.on('data', (piece: Buffer) => {
    bytes += piece.length;
    if (bytes > limit) tooLarge();
  });
}

function toResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    headers.append(res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '');
  const status = res.statusCode ?? 0;
  const body = NULL_BODY.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
  if (body === null) res.resume();
  else capAnswer(res, MAX_ANSWER_BYTES);
  return new Response(body, { status, statusText: res.statusMessage ?? '', headers });
}

function sendChunkFile(url: URL, init: RequestInit, path: string, pieces: PiecePool): Promise<Response> {
  const form = init.body;
  if (!(form instanceof FormData)) throw new TypeError('a chunk file request needs a FormData body');
  const boundary = `----chunkscribe-${randomBytes(12).toString('hex')}`;
  const { parts, end, length } = encodeForm(form, boundary);
  const headers = new Headers(init.headers);
  headers.set('content-type', `multipart/form-data; boundary=${boundary}`);
  headers.set('content-length', String(length));
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Response>((resolve, reject) => {
    // One connection per chunk: an upload takes seconds, a handshake milliseconds, and a kept-alive socket the
    // server has since closed would fail the chunk (node:http, unlike the platform fetch, does not retry it).
    const req = client.request(url, {
      method: init.method ?? 'POST',
      headers: Object.fromEntries(headers),
      agent: false,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    let answer: IncomingMessage | null = null;
    req.once('response', (res) => {
      answer = res;
      resolve(toResponse(res));
    });
    // An abort arrives as an AbortError (the SDK tells a timeout or a cancel from it); anything else is a failed
    // connection. Once answered, a later error reaches the SDK through the answer's body.
    req.on('error', reject);
    writeBody(req, parts, end, path, pieces).catch((err: unknown) => {
      // A server may answer (a 413, a 401) before it has read the body, then stop reading: the answer stands,
      // so the request is dropped only once it has been read.
      if (answer === null) req.destroy(err as Error);
      else answer.once('close', () => req.destroy());
    });
  });
}

/** A fetch to give the openai SDK (one per client): chunk uploads as above, everything else by the platform fetch. */
export function createChunkFileFetch(): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const pieces = createPiecePool();
  const chunkFileFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = chunkFileOf(init);
    if (path === undefined || init === undefined) return fetch(input, init);
    const url = input instanceof Request ? new URL(input.url) : new URL(input);
    return sendChunkFile(url, init, path, pieces);
  };
  // The SDK checks once per fetch that it can encode the platform FormData, with this fetch's `Response` if it has
  // one, else by a fetch of `data:,` through it: a first use of the platform fetch's machinery (~4 ms) on the way
  // out of the job's first chunk. A getter: reading the platform Response loads Node's bundled undici, which the
  // SDK's FormData loads anyway when it builds that first request.
  Object.defineProperty(chunkFileFetch, 'Response', { get: () => Response, enumerable: true });
  return chunkFileFetch;
}
