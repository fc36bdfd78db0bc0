/**
 * The body of POST /v1/jobs as it streams: the `file` part to the job directory (never whole in memory), the text
 * fields collected, every part bounded in size, header size and count, the pace watched (408 UPLOAD_TOO_SLOW), and
 * the errors the parser raises mapped to the contract's codes. The route (upload.ts) decides what to do with it.
 */
import type { Multipart } from '@fastify/multipart';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { AppError, isAppError } from '../../errors.ts';
import type { DirLease } from '../../resources/dir-pool.ts';
import { untilAborted, type Clock } from '../../transcribe/backoff.ts';
import { FILENAME_REFUSED_ABOVE_BYTES, storedFilename, utf8Prefix } from './upload-filename.ts';
import type { UploadSlot } from '../../resources/upload-limits.ts';
import { blockFileWriter } from './upload-blocks.ts';
import { watchUpload, type SlowUpload, type UploadPace } from './upload-watchdog.ts';

export const MAX_FIELD_BYTES = 64 * 1024;
/**
 * One part's header block (busboy keeps at most this much and drops the rest): room for a Content-Disposition
 * with a percent-encoded filename* of a long name, far below busboy's 80 KiB default.
 */
const PART_HEADER_MAX_BYTES = 8 * 1024;
/** Header lines of one part: a browser sends two (Content-Disposition, Content-Type). */
const PART_HEADER_PAIRS_MAX = 16;
/** The file is written in blocks of this much (upload-blocks.ts), not a write per socket read. */
const WRITE_BYTES = 256 * 1024;
/** A part or field name quoted back in an error message or its details. */
const ECHOED_NAME_MAX_BYTES = 100;

export interface Received {
  filename: string;
  sizeBytes: number;
  /** Hex sha256 of the file as it streamed in; null when not asked for (`UploadTarget.hash`). */
  sha256: string | null;
  fields: Record<string, string>;
  /** The values of the fields the route allows more than once (`timestamp_granularities[]`), in order. */
  lists: Record<string, string[]>;
}

interface UploadTarget {
  path: string;
  maxBytes: number;
  lease: DirLease;
  slot: UploadSlot;
  /** Field names that may come more than once (the form's field count still bounds them). */
  repeatable?: readonly string[];
  /**
   * Hash the file as it streams: only an Idempotency-Key's fingerprint needs it, and sha256 is ~65 ms of this
   * thread's CPU per 115 MB, spent while the body arrives.
   */
  hash: boolean;
  /** Sees the file's bytes in order as they stream to disk (the media measure that needs no file: chunker/mp3-duration.ts). */
  observe?: (piece: Buffer) => void;
}

/**
 * Streams the multipart body: the `file` part goes straight to DATA_DIR/jobs/<id>/upload (never whole in memory,
 * the size cap enforced while it streams), text fields are collected. A watchdog refuses a body that trickles
 * or stalls (408 UPLOAD_TOO_SLOW) so it cannot hold its lease until the request timeout. Throws with the
 * contract's codes.
 */
export async function receive(
  request: FastifyRequest,
  target: UploadTarget,
  pace: UploadPace,
  clock: Clock,
  log: FastifyBaseLogger,
): Promise<Received> {
  const raw = request.raw;
  const slow = new AbortController();
  const form = request.parts({
    limits: {
      fileSize: target.maxBytes,
      files: 2,
      fields: 20,
      fieldSize: MAX_FIELD_BYTES,
      parts: 30,
      headerPairs: PART_HEADER_PAIRS_MAX,
      headerSize: PART_HEADER_MAX_BYTES,
    },
  });
  const parts = form[Symbol.asyncIterator]();
  // The first next() starts the parser, which pipes the body into itself. Only then may a 'data' listener be
  // added: before, it would start the body flowing with nothing to parse it.
  const first = parts.next();
  const watchdog = watchUpload({
    clock,
    pace,
    onSlow: (why) => {
      log.info(why, 'upload too slow: refusing it and returning its lease');
      slow.abort(tooSlow(why));
    },
  });
  const onData = (chunk: Buffer) => watchdog.received(chunk.length);
  // Backpressure (our disk behind) pauses the body until the parser drains: that time is not the client's.
  const onPause = () => watchdog.paused();
  const onResume = () => watchdog.resumed();
  raw.on('data', onData);
  raw.on('pause', onPause);
  raw.on('resume', onResume);
  try {
    return await receiveParts(parts, first, target, slow.signal);
  } catch (err) {
    if (slow.signal.aborted) throw slow.signal.reason;
    throw bodyError(err, request) ?? err;
  } finally {
    watchdog.stop();
    raw.off('data', onData);
    raw.off('pause', onPause);
    raw.off('resume', onResume);
  }
}

async function receiveParts(
  parts: AsyncIterator<Multipart>,
  first: Promise<IteratorResult<Multipart>>,
  target: UploadTarget,
  signal: AbortSignal,
): Promise<Received> {
  let file: { filename: string; sizeBytes: number; sha256: string | null } | null = null;
  const fields: Record<string, string> = {};
  const lists: Record<string, string[]> = {};
  for (let next = first; ; next = parts.next()) {
    // Between parts the parser waits for the client: a stalled client must not keep this wait, and its lease.
    const step = await untilAborted(next, signal);
    if (step.done === true) break;
    const part = step.value;
    if (part.type === 'file') {
      const fieldName = utf8Prefix(part.fieldname, ECHOED_NAME_MAX_BYTES);
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw new AppError(
          'INVALID_FIELD',
          `Unexpected file part "${fieldName}": send the audio as the \`file\` part.`,
          {
            details: { field: fieldName },
          },
        );
      }
      if (file) {
        part.file.resume();
        throw new AppError('INVALID_FIELD', 'Send exactly one `file` part.', { details: { field: 'file' } });
      }
      if (Buffer.byteLength(part.filename, 'utf8') > FILENAME_REFUSED_ABOVE_BYTES) {
        part.file.resume();
        throw new AppError('INVALID_FIELD', `The file name is longer than ${FILENAME_REFUSED_ABOVE_BYTES} bytes.`, {
          details: { field: 'filename', max_bytes: FILENAME_REFUSED_ABOVE_BYTES },
        });
      }
      const counter = fileCounter(target);
      // Past the cap the parser only discards the rest of the part, which can be gigabytes: answer now instead.
      part.file.once('limit', () => part.file.destroy(fileTooLarge(target.maxBytes)));
      await pipeline(part.file, counter.stream, blockFileWriter(target.path, WRITE_BYTES), { signal });
      if (part.file.truncated) throw fileTooLarge(target.maxBytes);
      file = { filename: storedFilename(part.filename), ...counter.counted() };
    } else {
      const fieldName = utf8Prefix(part.fieldname, ECHOED_NAME_MAX_BYTES);
      if (part.fieldnameTruncated || part.valueTruncated) {
        throw new AppError('INVALID_FIELD', `Field "${fieldName}" is too long.`, { details: { field: fieldName } });
      }
      if (target.repeatable?.includes(part.fieldname) === true) {
        (lists[part.fieldname] ??= []).push(typeof part.value === 'string' ? part.value : JSON.stringify(part.value));
        continue;
      }
      if (Object.hasOwn(fields, part.fieldname)) {
        throw new AppError('INVALID_FIELD', `Field "${fieldName}" was sent twice.`, { details: { field: fieldName } });
      }
      // A part sent as application/json arrives parsed; the validators judge the JSON text.
      fields[part.fieldname] = typeof part.value === 'string' ? part.value : JSON.stringify(part.value);
    }
  }
  if (!file) throw new AppError('FILE_MISSING', 'The form has no `file` part: attach the audio as `file`.');
  if (file.sizeBytes === 0)
    throw new AppError('UNSUPPORTED_MEDIA', 'The uploaded file is empty: attach an audio recording.', {
      details: { reason: 'empty_file' },
    });
  return { ...file, fields, lists };
}

/** The `file` part on its way to disk: each piece counted against the upload's byte bounds, hashed when asked, shown to `observe`. */
function fileCounter(target: UploadTarget): {
  stream: Transform;
  counted(): { sizeBytes: number; sha256: string | null };
} {
  let bytes = 0;
  const hash = target.hash ? createHash('sha256') : null;
  const { lease, slot, observe } = target;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      // A body without Content-Length is counted against the client's and the pool's byte bounds as it arrives
      // (the client's may be shared by every host: asked of Redis, which is why this waits).
      slot
        .grow(bytes)
        .then(() => {
          lease.grow(bytes);
          hash?.update(chunk);
          observe?.(chunk);
          cb(null, chunk);
        })
        .catch((err: unknown) => cb(err as Error));
    },
  });
  return { stream, counted: () => ({ sizeBytes: bytes, sha256: hash?.digest('hex') ?? null }) };
}

function tooSlow(why: SlowUpload): AppError {
  const message =
    why.reason === 'stalled'
      ? `The upload sent nothing for ${Math.round(why.idle_ms / 1000)} s; resend it over a steadier connection.`
      : `The upload arrived at ${why.bytes_per_s} bytes/s, below the server's minimum; resend it over a faster connection.`;
  return new AppError('UPLOAD_TOO_SLOW', message, { retryable: true, details: { ...why } });
}

function fileTooLarge(maxBytes: number): AppError {
  return new AppError('FILE_TOO_LARGE', `The file is larger than ${maxBytes} bytes.`, {
    details: { max_bytes: maxBytes },
  });
}

/**
 * What went wrong while reading the body, in the contract's terms: the disk filling up, the client going away,
 * or a body the multipart parser cannot read (busboy throws plain Errors with no code). Null for anything else.
 */
function bodyError(err: unknown, request: FastifyRequest): AppError | null {
  if (isAppError(err) || !(err instanceof Error)) return null;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AppError('SERVER_BUSY', 'The server ran out of disk space while storing the upload; retry later.', {
      retryAfterS: 60,
      retryable: true,
      details: { resource: 'disk' },
      cause: err,
    });
  }
  if (request.raw.aborted || code === 'ECONNRESET' || code === 'FST_MP_PREMATURE_CLOSE') {
    return new AppError('FILE_MISSING', 'The upload was interrupted before the form was complete.', {
      details: { reason: 'interrupted' },
      cause: err,
    });
  }
  if (code === undefined && Object.getPrototypeOf(err) === Error.prototype) {
    return new AppError('FILE_MISSING', 'The body is not valid multipart/form-data: send the audio as a `file` part.', {
      details: { reason: 'malformed_multipart' },
      cause: err,
    });
  }
  return null;
}
