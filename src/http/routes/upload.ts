import type { Multipart } from '@fastify/multipart';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, isAppError } from '../../errors.ts';
import { ACCEPTED_JOB_EXAMPLE, DRY_RUN_EXAMPLE } from '../examples.ts';
import { DryRunEstimate, errorResponses, jsonResponse, UploadForm, UploadHeaders } from '../schemas.ts';
import { newJobId } from '../../jobs/ids.ts';
import { newJob } from '../../jobs/lifecycle.ts';
import { publicAudio, toJobResource } from '../job-resource.ts';
import type { JobRecord, JobRequest } from '../../jobs/types.ts';
import { RATE_LIMITED_ROUTE, uploaderKey } from '../plugins/upload-rate-limit.ts';
import type { DirLease } from '../../resources/dir-pool.ts';
import type { AcceptedMedia, Services } from '../services.ts';
import { systemClock, type Clock } from '../../transcribe/backoff.ts';
import { FILENAME_REFUSED_ABOVE_BYTES, storedFilename, utf8Prefix } from './upload-filename.ts';
import { createUploadSlots, type UploadSlot, type UploadSlots } from './upload-slots.ts';
import { watchUpload, type SlowUpload, type UploadPace } from './upload-watchdog.ts';

const MAX_FIELD_BYTES = 64 * 1024;
/**
 * One part's header block (busboy keeps at most this much and drops the rest): room for a Content-Disposition
 * with a percent-encoded filename* of a long name, far below busboy's 80 KiB default.
 */
const PART_HEADER_MAX_BYTES = 8 * 1024;
/** Header lines of one part: a browser sends two (Content-Disposition, Content-Type). */
const PART_HEADER_PAIRS_MAX = 16;
/** A part or field name quoted back in an error message or its details. */
const ECHOED_NAME_MAX_BYTES = 100;

interface Received {
  filename: string;
  sizeBytes: number;
  /** Hex sha256 of the file as it streamed in. */
  sha256: string;
  fields: Record<string, string>;
}

interface UploadTarget {
  path: string;
  maxBytes: number;
  lease: DirLease;
  slot: UploadSlot;
}

/**
 * Streams the multipart body: the `file` part goes straight to DATA_DIR/jobs/<id>/upload (never whole in memory,
 * the size cap enforced while it streams), text fields are collected. A watchdog refuses a body that trickles
 * or stalls (408 UPLOAD_TOO_SLOW) so it cannot hold its lease until the request timeout. Throws with the
 * contract's codes.
 */
async function receive(
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
  let file: { filename: string; sizeBytes: number; sha256: string } | null = null;
  const fields: Record<string, string> = {};
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
      let bytes = 0;
      const hash = createHash('sha256');
      const { lease, slot, maxBytes } = target;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          try {
            // A body without Content-Length is counted against the client's and the pool's byte bounds as it arrives.
            slot.grow(bytes);
            lease.grow(bytes);
          } catch (err) {
            cb(err as Error);
            return;
          }
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      // Past the cap the parser only discards the rest of the part, which can be gigabytes: answer now instead.
      part.file.once('limit', () => part.file.destroy(fileTooLarge(maxBytes)));
      await pipeline(part.file, counter, createWriteStream(target.path, { flags: 'wx' }), { signal });
      if (part.file.truncated) throw fileTooLarge(maxBytes);
      file = { filename: storedFilename(part.filename), sizeBytes: bytes, sha256: hash.digest('hex') };
    } else {
      const fieldName = utf8Prefix(part.fieldname, ECHOED_NAME_MAX_BYTES);
      if (part.fieldnameTruncated || part.valueTruncated) {
        throw new AppError('INVALID_FIELD', `Field "${fieldName}" is too long.`, { details: { field: fieldName } });
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
  return { ...file, fields };
}

/** `promise`, or the signal's reason as soon as it is aborted (the promise is then left to settle unobserved). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
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

/** After a refusal, how much more of the body is read and thrown away before the connection is cut. */
const DISCARD_MAX_BYTES = 64 * 1024 * 1024;
const DISCARD_MAX_MS = 30_000;

/**
 * A refusal sent before the body was read to its end. Left alone, a half-read body holds the connection (a
 * keep-alive client's next request on it stalls until a timeout); closing at once makes many clients fail on
 * EPIPE before they read the answer. So the rest is read and thrown away, the connection stays usable once the
 * body ends, and a client that keeps sending past the cap is cut off.
 */
function discardRest(request: FastifyRequest): void {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return;
  raw.unpipe();
  let discarded = 0;
  const cut = () => raw.socket?.destroy();
  const timer = setTimeout(cut, DISCARD_MAX_MS).unref();
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_MAX_BYTES) cut();
  });
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}

export default async function uploadRoutes(
  app: FastifyInstance,
  opts: { services: Services; clock?: Clock },
): Promise<void> {
  const { services, clock = systemClock } = opts;
  const { config } = services;
  const slots = createUploadSlots({
    maxPerHolder: config.uploadsPerKeyMax,
    maxBytesPerHolder: config.uploadBytesPerKeyMax,
    retryAfterS: config.pressure.retryAfterS,
  });
  const deps: UploadDeps = { services, clock, slots };

  const schema = {
    summary: 'Upload a recording and start a job',
    description:
      'multipart/form-data with one `file` part and optional fields. The form is streamed to disk and checked by the ' +
      'route itself (size while it streams, then the fields, then the media), so this schema documents it without ' +
      'being applied. With dry_run=true: 200 with the estimate, nothing kept. A body that stalls or arrives too ' +
      'slowly is refused with 408. A repeated Idempotency-Key is read whole and compared with the request that first ' +
      'used it: the same request answers that job, another one 422 IDEMPOTENCY_KEY_REUSED.',
    operationId: 'createJob',
    tags: ['jobs'],
    consumes: ['multipart/form-data'],
    body: UploadForm,
    headers: UploadHeaders,
    response: {
      202: jsonResponse(
        'Accepted; Location names the job. A replayed Idempotency-Key answers the same job.',
        Type.Ref('JobResource'),
        ACCEPTED_JOB_EXAMPLE,
        {
          location: Type.String({ description: 'The job: /v1/jobs/{id}.' }),
          'idempotent-replayed': Type.Literal('true', {
            description: 'Sent when an earlier upload with the same Idempotency-Key answers.',
          }),
        },
      ),
      200: jsonResponse('dry_run=true: the estimate; nothing was kept.', DryRunEstimate, DRY_RUN_EXAMPLE),
      ...errorResponses(
        'UNAUTHORIZED',
        'RATE_LIMITED',
        'INVALID_FIELD',
        'FILE_MISSING',
        'FILE_TOO_LARGE',
        'UPLOAD_TOO_SLOW',
        'UNSUPPORTED_MEDIA',
        'MEDIA_CORRUPT',
        'DURATION_OUT_OF_RANGE',
        'BUDGET_EXCEEDED',
        'IDEMPOTENCY_KEY_REUSED',
        'SERVER_BUSY',
        'INSUFFICIENT_STORAGE',
        'PROVIDER_AUTH',
        'PROVIDER_QUOTA',
        'PROVIDER_UNAVAILABLE',
        'INTERNAL',
      ),
    },
  };

  app.post(
    '/v1/jobs',
    {
      schema,
      config: RATE_LIMITED_ROUTE,
      // The schema is for the document: the streamed form and its header are validated by the handler, in order.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      try {
        return await createJob(deps, request, reply);
      } catch (err) {
        if (isAppError(err) && err.code === 'UPLOAD_TOO_SLOW') {
          // Reading the rest of a trickle would keep the socket as long as the client likes: close it after the answer.
          reply.header('connection', 'close');
        } else {
          discardRest(request);
        }
        throw err;
      }
    },
  );
}

interface UploadDeps {
  services: Services;
  clock: Clock;
  slots: UploadSlots;
}

/** One upload being stored: its job id, the lease of its job directory, and its log. */
interface Upload {
  id: string;
  lease: DirLease;
  log: FastifyBaseLogger;
  /** Set once the job is stored and queued: its directory is the job's from then on, whatever the answer does. */
  accepted?: true;
}

/**
 * POST /v1/jobs: the headers checked before any of the body is read, then an upload slot of the client's and
 * admission (disk, memory), held until the answer so one client's uploads cannot take the whole directory pool.
 */
async function createJob(deps: UploadDeps, request: FastifyRequest, reply: FastifyReply) {
  const idempotencyKey = idempotencyKeyOf(request);
  const declared = declaredBodyBytes(request, deps.services.config.maxUploadBytes);
  // What the pool will reserve for it: the declared length counts the form's framing, but no more than the cap.
  const expected = declared === null ? null : Math.min(declared, deps.services.config.maxUploadBytes);
  // Held until the answer: one client's uploads in progress cannot take the whole job directory pool, in leases
  // or in bytes.
  const slot = deps.slots.take(uploaderKey(request), expected);
  try {
    await deps.services.admit(declared);
    return await storeUpload(deps, request, reply, idempotencyKey, expected, slot);
  } finally {
    slot.release();
  }
}

function idempotencyKeyOf(request: FastifyRequest): string | null {
  const idempotencyKey =
    typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null;
  if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
    throw new AppError('INVALID_FIELD', 'Idempotency-Key must be 1 to 255 characters.', {
      details: { field: 'Idempotency-Key' },
    });
  }
  return idempotencyKey;
}

/** The body's declared length (null without one), refused at once when it is a multipart form too large to take. */
function declaredBodyBytes(request: FastifyRequest, maxUploadBytes: number): number | null {
  if (!request.isMultipart()) {
    throw new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.');
  }
  const length = Number(request.headers['content-length']);
  const declared = Number.isFinite(length) ? length : null;
  if (declared !== null && declared > maxUploadBytes + MAX_FIELD_BYTES * 4) {
    throw new AppError('FILE_TOO_LARGE', `The upload is larger than ${maxUploadBytes} bytes.`);
  }
  return declared;
}

/**
 * Streams the upload into a leased job directory, then answers in order: a repeated Idempotency-Key with its
 * job, a dry run with the estimate, else a new queued job. Whatever is not accepted leaves nothing behind.
 */
async function storeUpload(
  deps: UploadDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  idempotencyKey: string | null,
  expected: number | null,
  slot: UploadSlot,
) {
  const { services, clock } = deps;
  const { store, dirs, config } = services;
  const id = newJobId();
  const log = request.log.child({ jobId: id });
  const lease = await services.dirPool.acquire(id, expected);
  const upload: Upload = { id, lease, log };
  try {
    const received = await receive(
      request,
      { path: dirs.uploadPath(id), maxBytes: config.maxUploadBytes, lease, slot },
      config.uploadPace,
      clock,
      log,
    );
    lease.settle(received.sizeBytes);
    services.events.uploadBytes(received.sizeBytes);
    const fingerprint = requestFingerprint(received);
    const earlier = idempotencyKey ? store.findByIdempotencyKey(request.owner, idempotencyKey) : null;
    if (earlier) return await replay(services, reply, upload, sameRequest(earlier, fingerprint));
    const { request: jobRequest, dryRun } = services.validateFields(received.fields);
    const media = await services.validateMedia({
      file: dirs.uploadPath(id),
      filename: received.filename,
      sizeBytes: received.sizeBytes,
      request: jobRequest,
    });
    if (dryRun) return await answerDryRun(services, reply, upload, media);
    const job = queuedJob(id, request, jobRequest, media, idempotencyKey);
    return await accept(services, request, reply, upload, job, fingerprint);
  } catch (err) {
    await release(services, upload);
    throw err;
  }
}

/** dry_run=true: the estimate, and nothing of the upload kept. */
async function answerDryRun(services: Services, reply: FastifyReply, upload: Upload, media: AcceptedMedia) {
  await release(services, upload);
  return reply.code(200).send({
    dry_run: true,
    audio: publicAudio(media.audio),
    estimate: media.estimate,
    chunks_planned: media.plannedChunks,
  });
}

function queuedJob(
  id: string,
  request: FastifyRequest,
  jobRequest: JobRequest,
  media: AcceptedMedia,
  idempotencyKey: string | null,
): JobRecord {
  return newJob(
    {
      id,
      owner: request.owner,
      audio: media.audio,
      request: jobRequest,
      estimate: media.estimate,
      plannedChunks: media.plannedChunks,
      idempotencyKey,
      keyName: request.keyName,
    },
    new Date(),
  );
}

/** Stores the job and queues it; the upload's directory becomes the job's. */
async function accept(
  services: Services,
  request: FastifyRequest,
  reply: FastifyReply,
  upload: Upload,
  job: JobRecord,
  fingerprint: string,
) {
  const { store } = services;
  try {
    store.insertJob(job, job.idempotencyKey === null ? null : fingerprint);
  } catch (err) {
    // Two concurrent requests with one Idempotency-Key: the loser answers as a replay of the winner's.
    const winner = job.idempotencyKey ? store.findByIdempotencyKey(request.owner, job.idempotencyKey) : null;
    if (!winner) throw err;
    return await replay(services, reply, upload, sameRequest(winner, fingerprint));
  }
  upload.log.info(
    { bytes: job.audio.size_bytes, durationS: job.audio.duration_s, chunks: job.chunksTotal },
    'job accepted',
  );
  services.events.accepted(job);
  // The runner that will run the job takes the lease over (in scale-out, a worker process takes its own).
  upload.accepted = true;
  upload.lease.release();
  void services.runner.enqueue(job.id);
  return sendJob(services, reply, job);
}

/** An earlier upload with the same Idempotency-Key answers; this one leaves nothing behind. */
async function replay(services: Services, reply: FastifyReply, upload: Upload, job: JobRecord) {
  await release(services, upload);
  return sendJob(services, reply.header('idempotent-replayed', 'true'), job);
}

/** The upload was not accepted (refused, dry run, lost an idempotency race): nothing of it stays. */
async function release(services: Services, upload: Upload): Promise<void> {
  if (upload.accepted) return;
  try {
    await services.dirs.remove(upload.id);
  } finally {
    upload.lease.release();
  }
}

function sendJob(services: Services, reply: FastifyReply, job: JobRecord) {
  const resource = toJobResource(job, services.store.listChunkStates(job.id), Date.now());
  return reply.code(202).header('location', resource.links.self).send(resource);
}

/**
 * What an Idempotency-Key stands for: the fields, the file name and the file's content. Field order does not
 * matter; every value does.
 */
function requestFingerprint(received: Received): string {
  const fields = Object.entries(received.fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([received.filename, received.sha256, fields]))
    .digest('hex');
}

/** The job a repeated key answers, or 422 when the key was first used for another request (as payment APIs do). */
function sameRequest(earlier: { job: JobRecord; requestFingerprint: string | null }, fingerprint: string): JobRecord {
  // Jobs from before fingerprints were kept replay for any request, as they did.
  if (earlier.requestFingerprint !== null && earlier.requestFingerprint !== fingerprint) {
    throw new AppError(
      'IDEMPOTENCY_KEY_REUSED',
      'This Idempotency-Key was already used for a different request (other file or fields); use a new key for a new upload.',
    );
  }
  return earlier.job;
}
