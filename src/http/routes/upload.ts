import { createHash } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, errorMessage, isAppError } from '../../errors.ts';
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
import { createUploadSlots, type UploadSlot, type UploadSlots } from './upload-slots.ts';
import { discardRest, MAX_FIELD_BYTES, receive, type Received } from './upload-receive.ts';

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
  /** Set once the upload is in the object store: a refusal after that deletes it there too. */
  saved?: true;
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
  // Durable before reported: with an object store, the job's row exists only once any host can get the upload.
  await services.uploads.save(job.id, services.dirs.uploadPath(job.id));
  upload.saved = true;
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
    // Failing here must not hide why the upload was refused: the object sweep deletes an object without a row.
    if (upload.saved) {
      await services.uploads.remove(upload.id).catch((err: unknown) => {
        upload.log.warn({ err: errorMessage(err) }, 'the refused upload stays in the object store until the sweep');
      });
    }
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
