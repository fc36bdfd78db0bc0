/**
 * The answer of an OpenAI audio request, which comes when its job ends, maybe hours later. The status line and
 * headers (200, the format's content type, `x-job-id`) go out the moment the job is stored, so a client that
 * goes away knows its job and the job runs on: a disconnect never cancels it. While the job runs, bytes keep
 * flowing every keep-alive interval (EVENT_HEARTBEAT_S), because HTTP clients and proxies cut a body that stays
 * idle (undici, under Node's fetch and the openai SDK, after 300 s; httpx after its read timeout):
 * - json and verbose_json get a space: whitespace before a JSON value is valid JSON, so the SDKs (which read
 *   the whole body, then JSON.parse it) return exactly what they would without it;
 * - text, srt and vtt are returned by the SDKs byte for byte, so any padding would be in the result. When the
 *   client accepts gzip (the SDKs' HTTP clients do), the body is gzip-encoded and each keep-alive is an empty
 *   deflate block (a sync flush): bytes on the wire, nothing in the decoded text. A client that does not accept
 *   gzip gets nothing until the end.
 * A job that fails or is cancelled after the headers went out gets OpenAI's error object written into the body
 * and the connection is then cut before the body's end, so a client (the SDKs, curl) sees a failed request rather
 * than a transcript, while a human reading the bytes sees why. The job stays in /v1/jobs under its id.
 */
import type { ServerResponse } from 'node:http';
import { constants, createGzip, type Gzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isErrorCode } from '../../errors.ts';
import type { JobStore } from '../../jobs/job-store.ts';
import { isLive, type JobRecord } from '../../jobs/types.ts';
import { monotonicClock, sleep, type Clock } from '../../transcribe/backoff.ts';
import { openAIErrorBody } from './errors.ts';

export interface LongAnswerDeps {
  store: Pick<JobStore, 'getJob' | 'jobLifecycle' | 'getTranscript'>;
  /** How often the store is read for the job's end (it may run in another process, so it is read, not awaited). */
  pollMs: number;
  /** Some bytes at least this often. */
  keepAliveMs: number;
  clock?: Clock;
}

/** The open answer: its body, and a signal that aborts when the client goes away or the server closes. */
export interface OpenAnswer {
  write(text: string): void;
  /** The last bytes, and the body's end. */
  end(text: string): void;
  /** Bytes (or an empty gzip block) that show the answer is alive. */
  keepAlive(): void;
  /** The error object, then the connection cut (see the module comment); `asEvent` wraps it as an SSE event. */
  fail(err: AppError, asEvent?: boolean): void;
  signal: AbortSignal;
  /** Whether the client went away (as opposed to the server closing). */
  clientGone(): boolean;
}

/** Whether the request's Accept-Encoding takes gzip (a q=0 refuses it). */
function acceptsGzip(request: FastifyRequest): boolean {
  const header = request.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    return coding.trim() === 'gzip' && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p));
  });
}

/**
 * Takes the reply over from Fastify and sends the status line and headers now. The socket's idle timeout
 * (CONNECTION_TIMEOUT_MS) is lifted for this response: it is waiting for the job, not for the client.
 */
export function openAnswer(
  request: FastifyRequest,
  reply: FastifyReply,
  job: JobRecord,
  contentType: string,
  padding: string | null,
  closing: AbortSignal,
): OpenAnswer {
  reply.hijack();
  const res = reply.raw;
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new Error('the client went away'));
  });
  const socket = request.raw.socket;
  socket.setTimeout(0);
  socket.setKeepAlive(true, 30_000);
  const gzip = padding === null && acceptsGzip(request) ? createGzip() : null;
  res.writeHead(200, {
    'content-type': contentType,
    'x-job-id': job.id,
    'cache-control': 'no-store',
    // nginx would otherwise buffer the keep-alive bytes and stream events.
    'x-accel-buffering': 'no',
    ...(gzip ? { 'content-encoding': 'gzip', vary: 'accept-encoding' } : {}),
  });
  res.flushHeaders();
  if (gzip) gzip.pipe(res);
  const body = bodyOf(res, gzip, padding);
  return { ...body, signal: AbortSignal.any([gone.signal, closing]), clientGone: () => gone.signal.aborted };
}

function bodyOf(res: ServerResponse, gzip: Gzip | null, padding: string | null) {
  const out = gzip ?? res;
  // Ends the connection once what was written has gone out, without the body's end: the client sees a cut body.
  const cut = () => res.socket?.end();
  return {
    write: (text: string) => void out.write(text),
    end: (text: string) => void out.end(text),
    keepAlive() {
      if (gzip) gzip.flush(constants.Z_SYNC_FLUSH);
      else if (padding !== null) res.write(padding);
    },
    fail(err: AppError, asEvent = false) {
      if (res.destroyed) return;
      const json = JSON.stringify(openAIErrorBody(err));
      const text = asEvent ? `data: ${json}\n\n` : json;
      if (gzip) {
        gzip.write(text);
        // The flushed block reaches the response before the callback runs; the socket sends it before its end.
        gzip.flush(constants.Z_SYNC_FLUSH, cut);
      } else res.write(text, cut);
    },
  };
}

/** How a job that did not complete reads as an error. */
export function jobError(job: Pick<JobRecord, 'status' | 'errorCode' | 'errorMessage'> | null): AppError {
  if (job === null) return new AppError('NOT_FOUND', 'The job was deleted before it ended.');
  if (job.status === 'cancelled') return new AppError('CANCELLED', job.errorMessage ?? 'The job was cancelled.');
  const code = job.errorCode !== null && isErrorCode(job.errorCode) ? job.errorCode : 'INTERNAL';
  return new AppError(code, job.errorMessage ?? 'The job failed.');
}

/**
 * Waits for the job to end, reading its status from the store every pollMs, and keeps the answer alive.
 * Resolves with the ended job (null when it was deleted); rejects with the signal's reason when it aborts.
 */
export async function untilJobEnds(
  answer: OpenAnswer,
  job: Pick<JobRecord, 'id' | 'owner'>,
  deps: LongAnswerDeps,
): Promise<JobRecord | null> {
  // Monotonic: on the wall clock, a step back left the poll in progress waiting the step's length and sent no
  // keep-alive until the clock was back where it was (now - lastWrite < 0), long past any proxy's idle timeout.
  const clock = deps.clock ?? monotonicClock;
  let lastWrite = clock.now();
  for (;;) {
    const state = await deps.store.jobLifecycle(job.id);
    if (state === null || !isLive(state.status)) return await deps.store.getJob(job.id, job.owner);
    await sleep(deps.pollMs, answer.signal, clock);
    if (clock.now() - lastWrite >= deps.keepAliveMs) {
      answer.keepAlive();
      lastWrite = clock.now();
    }
  }
}

/** What an answer still waiting when the server closes gets. */
export function shuttingDown(): AppError {
  return new AppError(
    'SERVER_BUSY',
    'The server is shutting down; the job resumes when it starts again: find it in /v1/jobs by the x-job-id header.',
    { retryable: true },
  );
}
