/**
 * Accepting an upload as a job: the step every upload route shares (POST /v1/jobs and the OpenAI-compatible
 * /v1/audio/* routes). The headers are checked before any of the body is read, the client takes an upload slot
 * and admission (disk, memory), the body streams into a leased job directory, then the route's own reading of the
 * fields, the media validation, idempotency, and the job stored and queued. The route decides how to answer.
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorMessage, isAppError, type ErrorCode } from '../../errors.ts';
import { measureMp3Stream } from '../../chunker/mp3-duration.ts';
import { newJobId } from '../../jobs/ids.ts';
import { newJob } from '../../jobs/lifecycle.ts';
import type { JobRecord, JobRequest } from '../../jobs/types.ts';
import { uploaderKey } from '../plugins/upload-rate-limit.ts';
import type { DirLease } from '../../resources/dir-pool.ts';
import type { UploadSlot, UploadSlots } from '../../resources/upload-limits.ts';
import type { AcceptedMedia, Services, ValidatedRequest } from '../services.ts';
import { monotonicClock, type Clock } from '../../transcribe/backoff.ts';
import { discardRest } from '../discard-body.ts';
import { MAX_FIELD_BYTES, receive, type Received } from './upload-receive.ts';
import { idempotencyKeyOf, requestFingerprint, sameRequest } from './upload-idempotency.ts';

/** Every code accepting an upload can answer with (the key check and the upload rate limit in front included). */
export const UPLOAD_ERROR_CODES = [
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
] as const satisfies readonly ErrorCode[];

/** What an accepted upload became: a job (new, or an earlier one a repeated Idempotency-Key names) or a dry run. */
export type UploadOutcome =
  { kind: 'job'; job: JobRecord; replayed: boolean; received: Received } | { kind: 'dry_run'; media: AcceptedMedia };

export interface UploadRoute {
  /** The route's own reading of the form's fields into a job request; throws an AppError for a bad field. */
  fields(received: Received): ValidatedRequest;
  /** Text fields that may come more than once (collected in `Received.lists`). */
  repeatable?: readonly string[];
  /**
   * Names the route in the Idempotency-Key fingerprint, so one key with the same form on two routes that make
   * different jobs (a transcription, a translation) is a reuse, not a replay. POST /v1/jobs has none.
   */
  fingerprintTag?: string;
}

export interface JobUploads {
  /**
   * Streams the upload and stores it as a queued job. On a refusal nothing of the upload is left behind and the
   * rest of the body is read and dropped (or, for a trickle, the connection is closed after the answer).
   */
  accept(request: FastifyRequest, reply: FastifyReply, route: UploadRoute): Promise<UploadOutcome>;
}

/**
 * One per app. The per-key upload slots are the services' (every upload route's, and with REDIS_URL every host's),
 * so a client cannot double its share.
 */
export function createJobUploads(
  services: Services,
  { clock = monotonicClock, whileChecking }: { clock?: Clock; whileChecking?: () => void } = {},
): JobUploads {
  const deps: UploadDeps = { services, clock, slots: services.uploadLimits.slots, whileChecking };
  return {
    async accept(request, reply, route) {
      try {
        return await createJob(deps, request, route);
      } catch (err) {
        if (isAppError(err) && err.code === 'UPLOAD_TOO_SLOW') {
          // Reading the rest of a trickle would keep the socket as long as the client likes: close it after the answer.
          reply.header('connection', 'close');
        } else {
          discardRest(request.raw);
        }
        throw err;
      }
    },
  };
}

interface UploadDeps {
  services: Services;
  clock: Clock;
  slots: UploadSlots;
  /** Work for the event loop while an upload's media is checked (child processes), which leaves it idle. */
  whileChecking: (() => void) | undefined;
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
 * The headers checked before any of the body is read, then an upload slot of the client's and admission (disk,
 * memory), held until the job is stored so one client's uploads cannot take the whole directory pool.
 */
async function createJob(deps: UploadDeps, request: FastifyRequest, route: UploadRoute): Promise<UploadOutcome> {
  const idempotencyKey = idempotencyKeyOf(request);
  const declared = declaredBodyBytes(request, deps.services.config.maxUploadBytes);
  await assertJobRoom(deps.services, request.owner, idempotencyKey);
  // What the pool will reserve for it: the declared length counts the form's framing, but no more than the cap.
  const expected = declared === null ? null : Math.min(declared, deps.services.config.maxUploadBytes);
  // Held until the job is stored: one client's uploads in progress cannot take the whole job directory pool, in
  // leases or in bytes.
  const slot = await deps.slots.take(uploaderKey(request), expected);
  try {
    await deps.services.admit(declared);
    return await storeUpload(deps, request, route, idempotencyKey, expected, slot);
  } finally {
    await slot.release();
  }
}

/**
 * A key at JOBS_PER_KEY_MAX live jobs (every host's: the store counts) is refused before the body is read: accepted
 * jobs keep their directories until they end, so one key's could take them all. A repeated Idempotency-Key makes
 * no job and passes. Open mode has one client: no limit.
 */
async function assertJobRoom(services: Services, owner: string | null, idempotencyKey: string | null): Promise<void> {
  if (owner === null) return;
  const limit = services.config.jobsPerKeyMax;
  if ((await services.store.liveJobsOf(owner)) < limit) return;
  if (idempotencyKey !== null && (await services.store.findByIdempotencyKey(owner, idempotencyKey))) return;
  throw new AppError(
    'RATE_LIMITED',
    `This key has ${limit} jobs queued or running, as many as it may at once; wait for one to end, or cancel one.`,
    {
      retryAfterS: services.config.pressure.retryAfterS,
      retryable: true,
      details: { reason: 'concurrent_jobs', limit },
    },
  );
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
 * Streams the upload into a leased job directory, then decides in order: a repeated Idempotency-Key answers its
 * job, a dry run its estimate, else a new queued job. Whatever is not accepted leaves nothing behind.
 */
async function storeUpload(
  deps: UploadDeps,
  request: FastifyRequest,
  route: UploadRoute,
  idempotencyKey: string | null,
  expected: number | null,
  slot: UploadSlot,
): Promise<UploadOutcome> {
  const { services, clock } = deps;
  const { store, dirs, config } = services;
  const id = newJobId();
  const log = request.log.child({ jobId: id });
  const lease = await services.dirPool.acquire(id, expected);
  const upload: Upload = { id, lease, log };
  // An mp3's frames walked as they stream in: its measure is known when the last byte is, not a walk of the file later.
  const walked = measureMp3Stream({ maxDurationS: config.maxDurationS });
  try {
    const received = await receive(
      request,
      {
        path: dirs.uploadPath(id),
        maxBytes: config.maxUploadBytes,
        lease,
        slot,
        repeatable: route.repeatable ?? [],
        hash: idempotencyKey !== null,
        observe: (piece) => walked.push(piece),
      },
      config.uploadPace,
      clock,
      log,
    );
    lease.settle(received.sizeBytes);
    services.events.uploadBytes(received.sizeBytes);
    const fingerprint = idempotencyKey === null ? null : requestFingerprint(received, route.fingerprintTag);
    const earlier = idempotencyKey ? await store.findByIdempotencyKey(request.owner, idempotencyKey) : null;
    if (earlier) return await replay(services, upload, sameRequest(earlier, fingerprint), received);
    const { request: jobRequest, dryRun } = route.fields(received);
    const media = await services.validateMedia({
      file: dirs.uploadPath(id),
      filename: received.filename,
      sizeBytes: received.sizeBytes,
      request: jobRequest,
      walked,
      ...(deps.whileChecking && { whileChecking: deps.whileChecking }),
    });
    if (dryRun) {
      await release(services, upload);
      return { kind: 'dry_run', media };
    }
    const job = queuedJob(id, request, jobRequest, media, idempotencyKey);
    return await accept(services, request, upload, job, { fingerprint, received });
  } catch (err) {
    await release(services, upload);
    throw err;
  }
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
  upload: Upload,
  job: JobRecord,
  { fingerprint, received }: { fingerprint: string | null; received: Received },
): Promise<UploadOutcome> {
  const { store } = services;
  // Durable before reported: with an object store, the job's row exists only once any host can get the upload.
  await services.uploads.save(job.id, services.dirs.uploadPath(job.id));
  upload.saved = true;
  try {
    await store.insertJob(job, fingerprint);
  } catch (err) {
    // Two concurrent requests with one Idempotency-Key: the loser answers as a replay of the winner's.
    const winner = job.idempotencyKey ? await store.findByIdempotencyKey(request.owner, job.idempotencyKey) : null;
    if (!winner) throw err;
    return await replay(services, upload, sameRequest(winner, fingerprint), received);
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
  return { kind: 'job', job, replayed: false, received };
}

/** An earlier upload with the same Idempotency-Key answers; this one leaves nothing behind. */
async function replay(services: Services, upload: Upload, job: JobRecord, received: Received): Promise<UploadOutcome> {
  await release(services, upload);
  return { kind: 'job', job, replayed: true, received };
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
