import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, isAppError } from '../errors.ts';
import { ACCEPTED_JOB_EXAMPLE, DRY_RUN_EXAMPLE } from '../http-examples.ts';
import { DryRunEstimate, errorResponses, jsonResponse, UploadForm, UploadHeaders } from '../http-schemas.ts';
import { newJobId } from '../jobs/ids.ts';
import { toJobResource } from '../jobs/progress.ts';
import type { JobRecord } from '../jobs/types.ts';
import { RATE_LIMITED_ROUTE } from '../plugins/upload-rate-limit.ts';
import type { DirLease } from '../resources/dir-pool.ts';
import type { Services } from '../services.ts';

const MAX_FIELD_BYTES = 64 * 1024;

interface Received {
  filename: string;
  sizeBytes: number;
  fields: Record<string, string>;
}

/**
 * Streams the multipart body: the `file` part goes straight to DATA_DIR/jobs/<id>/upload (never whole in memory,
 * the size cap enforced while it streams), text fields are collected. Throws with the contract's codes.
 */
async function receive(request: FastifyRequest, uploadPath: string, maxBytes: number, lease: DirLease): Promise<Received> {
  try {
    return await receiveParts(request, uploadPath, maxBytes, lease);
  } catch (err) {
    throw bodyError(err, request) ?? err;
  }
}

async function receiveParts(request: FastifyRequest, uploadPath: string, maxBytes: number, lease: DirLease): Promise<Received> {
  let file: { filename: string; sizeBytes: number } | null = null;
  const fields: Record<string, string> = {};
  const parts = request.parts({
    limits: { fileSize: maxBytes, files: 2, fields: 20, fieldSize: MAX_FIELD_BYTES, parts: 30, headerPairs: 200 },
  });
  for await (const part of parts) {
    if (part.type === 'file') {
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw new AppError('INVALID_FIELD', `Unexpected file part "${part.fieldname}": send the audio as the \`file\` part.`, {
          details: { field: part.fieldname },
        });
      }
      if (file) {
        part.file.resume();
        throw new AppError('INVALID_FIELD', 'Send exactly one `file` part.', { details: { field: 'file' } });
      }
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          try {
            // A body without Content-Length is counted against the pool's byte bound as it arrives.
            lease.grow(bytes);
          } catch (err) {
            cb(err as Error);
            return;
          }
          cb(null, chunk);
        },
      });
      // Past the cap the parser only discards the rest of the part, which can be gigabytes: answer now instead.
      part.file.once('limit', () => part.file.destroy(fileTooLarge(maxBytes)));
      await pipeline(part.file, counter, createWriteStream(uploadPath, { flags: 'wx' }));
      if (part.file.truncated) throw fileTooLarge(maxBytes);
      file = { filename: part.filename, sizeBytes: bytes };
    } else {
      if (part.fieldnameTruncated || part.valueTruncated) {
        throw new AppError('INVALID_FIELD', `Field "${part.fieldname}" is too long.`, { details: { field: part.fieldname } });
      }
      if (Object.hasOwn(fields, part.fieldname)) {
        throw new AppError('INVALID_FIELD', `Field "${part.fieldname}" was sent twice.`, { details: { field: part.fieldname } });
      }
      // A part sent as application/json arrives parsed; the validators judge the JSON text.
      fields[part.fieldname] = typeof part.value === 'string' ? part.value : JSON.stringify(part.value);
    }
  }
  if (!file) throw new AppError('FILE_MISSING', 'The form has no `file` part: attach the audio as `file`.');
  if (file.sizeBytes === 0) throw new AppError('UNSUPPORTED_MEDIA', 'The uploaded file is empty: attach an audio recording.', { details: { reason: 'empty_file' } });
  return { ...file, fields };
}

function fileTooLarge(maxBytes: number): AppError {
  return new AppError('FILE_TOO_LARGE', `The file is larger than ${maxBytes} bytes.`, { details: { max_bytes: maxBytes } });
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

export default async function uploadRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts;
  const { store, dirs, runner, config } = services;

  const schema = {
    summary: 'Upload a recording and start a job',
    description:
      'multipart/form-data with one `file` part and optional fields. The form is streamed to disk and checked by the ' +
      'route itself (size while it streams, then the fields, then the media), so this schema documents it without ' +
      'being applied. With dry_run=true: 200 with the estimate, nothing kept.',
    operationId: 'createJob',
    tags: ['jobs'],
    consumes: ['multipart/form-data'],
    body: UploadForm,
    headers: UploadHeaders,
    response: {
      202: jsonResponse('Accepted; Location names the job. A replayed Idempotency-Key answers the same job.', Type.Ref('JobResource'), ACCEPTED_JOB_EXAMPLE, {
        location: Type.String({ description: 'The job: /v1/jobs/{id}.' }),
        'idempotent-replayed': Type.Literal('true', { description: 'Sent when an earlier upload with the same Idempotency-Key answers.' }),
      }),
      200: jsonResponse('dry_run=true: the estimate; nothing was kept.', DryRunEstimate, DRY_RUN_EXAMPLE),
      ...errorResponses(
        'UNAUTHORIZED',
        'RATE_LIMITED',
        'INVALID_FIELD',
        'FILE_MISSING',
        'FILE_TOO_LARGE',
        'UNSUPPORTED_MEDIA',
        'MEDIA_CORRUPT',
        'DURATION_OUT_OF_RANGE',
        'BUDGET_EXCEEDED',
        'SERVER_BUSY',
        'INSUFFICIENT_STORAGE',
        'PROVIDER_AUTH',
        'PROVIDER_QUOTA',
        'PROVIDER_UNAVAILABLE',
        'INTERNAL',
      ),
    },
  };

  app.post('/v1/jobs', {
    schema,
    config: RATE_LIMITED_ROUTE,
    // The schema is for the document: the streamed form and its header are validated by the handler, in order.
    validatorCompiler: () => () => true,
  }, async (request, reply) => {
    try {
      return await createJob(request, reply);
    } catch (err) {
      discardRest(request);
      throw err;
    }
  });

  async function createJob(request: FastifyRequest, reply: FastifyReply) {
    const idempotencyKey = typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null;
    if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
      throw new AppError('INVALID_FIELD', 'Idempotency-Key must be 1 to 255 characters.', { details: { field: 'Idempotency-Key' } });
    }
    const replay = idempotencyKey ? store.findByIdempotencyKey(request.owner, idempotencyKey) : null;
    if (replay) {
      request.raw.resume();
      return sendJob(reply.header('idempotent-replayed', 'true'), replay);
    }
    if (!request.isMultipart()) {
      throw new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.');
    }
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > config.maxUploadBytes + MAX_FIELD_BYTES * 4) {
      throw new AppError('FILE_TOO_LARGE', `The upload is larger than ${config.maxUploadBytes} bytes.`);
    }
    await services.admit(Number.isFinite(declared) ? declared : null);

    const id = newJobId();
    const log = request.log.child({ jobId: id });
    const lease = await services.dirPool.acquire(id, Number.isFinite(declared) ? Math.min(declared, config.maxUploadBytes) : null);
    try {
      const received = await receive(request, dirs.uploadPath(id), config.maxUploadBytes, lease);
      lease.settle(received.sizeBytes);
      services.events.uploadBytes(received.sizeBytes);
      const { request: jobRequest, dryRun } = services.validateFields(received.fields);
      const media = await services.validateMedia({
        file: dirs.uploadPath(id),
        filename: received.filename,
        sizeBytes: received.sizeBytes,
        request: jobRequest,
      });
      if (dryRun) {
        await release(id, lease);
        return reply.code(200).send({
          dry_run: true,
          audio: publicAudio(media.audio),
          estimate: media.estimate,
          chunks_planned: media.plannedChunks,
        });
      }
      const now = new Date().toISOString();
      const job: JobRecord = {
        id,
        owner: request.owner,
        status: 'queued',
        stage: null,
        createdAt: now,
        updatedAt: now,
        completedAt: null,
        audio: media.audio,
        request: jobRequest,
        estimate: media.estimate,
        chunksTotal: media.plannedChunks,
        slicingDone: false,
        percent: 0,
        transcribingStartedAt: null,
        errorCode: null,
        errorMessage: null,
        idempotencyKey,
        keyName: request.keyName,
      };
      try {
        store.insertJob(job);
      } catch (err) {
        // Two concurrent requests with one Idempotency-Key: the loser answers with the winner's job.
        const winner = idempotencyKey ? store.findByIdempotencyKey(request.owner, idempotencyKey) : null;
        if (!winner) throw err;
        await release(id, lease);
        return sendJob(reply.header('idempotent-replayed', 'true'), winner);
      }
      log.info({ bytes: received.sizeBytes, durationS: media.audio.duration_s, chunks: media.plannedChunks }, 'job accepted');
      services.events.accepted(job);
      // The runner that will run the job takes the lease over (in scale-out, a worker process takes its own).
      lease.release();
      void runner.enqueue(id);
      return sendJob(reply, job);
    } catch (err) {
      await release(id, lease);
      throw err;
    }
  }

  /** The upload was not accepted (refused, dry run, lost an idempotency race): nothing of it stays. */
  async function release(id: string, lease: DirLease): Promise<void> {
    try {
      await dirs.remove(id);
    } finally {
      lease.release();
    }
  }

  function sendJob(reply: FastifyReply, job: JobRecord) {
    const resource = toJobResource(job, store.listChunkStates(job.id), Date.now());
    return reply.code(202).header('location', resource.links.self).send(resource);
  }
}

function publicAudio(audio: JobRecord['audio']): Omit<JobRecord['audio'], 'demuxer'> {
  const { demuxer: _demuxer, ...rest } = audio;
  return rest;
}
