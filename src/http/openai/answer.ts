/**
 * The answer of an OpenAI audio request, which comes when its job ends, maybe hours later. The status line and
 * headers (200, the format's content type, `x-job-id`) go out the moment the job is stored, so a client that
 * goes away knows its job and the job runs on: a disconnect never cancels it. While the job runs:
 * - json and verbose_json get a space every keep-alive interval: whitespace before a JSON value is valid JSON,
 *   so the SDKs (which read the whole body, then JSON.parse it) return exactly what they would without it, and
 *   proxies that cut idle responses see bytes flowing;
 * - text, srt and vtt get nothing in the body (the SDKs return it byte for byte, so any padding would be in the
 *   result); the socket's TCP keep-alive holds NAT entries, and stream=true is the form for proxies that cut an
 *   idle response.
 * A job that fails or is cancelled after the headers went out gets OpenAI's error object written into the body
 * and the connection is then cut before the body's end, so a client (the SDKs, curl) sees a failed request rather
 * than a transcript, while a human reading the bytes sees why. The job stays in /v1/jobs under its id.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isErrorCode } from '../../errors.ts';
import type { JobStore } from '../../jobs/store.ts';
import { isLive, type JobRecord } from '../../jobs/types.ts';
import { sleep, systemClock, type Clock } from '../../transcribe/backoff.ts';
import { openAIErrorBody } from './errors.ts';
import { OPENAI_CONTENT_TYPES } from './render.ts';
import type { ResponseFormat } from './form.ts';

export interface LongAnswerDeps {
  store: Pick<JobStore, 'getJob' | 'jobLifecycle' | 'getTranscript'>;
  /** How often the store is read for the job's end (it may run in another process, so it is read, not awaited). */
  pollMs: number;
  /** A byte at least this often on a JSON answer. */
  keepAliveMs: number;
  clock?: Clock;
}

/** The open answer: its raw response, and a signal that aborts when the client goes away or the server closes. */
export interface OpenAnswer {
  res: ServerResponse;
  signal: AbortSignal;
  /** Whether the client went away (as opposed to the server closing). */
  clientGone(): boolean;
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
  closing: AbortSignal,
  keepAliveMs: number,
): OpenAnswer {
  reply.hijack();
  const res = reply.raw;
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new Error('the client went away'));
  });
  const socket = request.raw.socket;
  socket.setTimeout(0);
  socket.setKeepAlive(true, keepAliveMs);
  res.writeHead(200, {
    'content-type': contentType,
    'x-job-id': job.id,
    'cache-control': 'no-store',
    // nginx would otherwise buffer the keep-alive bytes and stream events.
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  return {
    res,
    signal: AbortSignal.any([gone.signal, closing]),
    clientGone: () => gone.signal.aborted,
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
 * Writes the error into the body and cuts the connection before the body's end (see the module comment). The
 * cut waits for the write to reach the socket.
 */
export function failAnswer(res: ServerResponse, err: AppError, asEvent = false): void {
  if (res.destroyed) return;
  const json = JSON.stringify(openAIErrorBody(err));
  res.write(asEvent ? `data: ${json}\n\n` : json, () => res.destroy());
}

/**
 * Waits for the job to end, reading its status from the store every pollMs, and keeps a JSON answer alive.
 * Resolves with the ended job (null when it was deleted); rejects with the signal's reason when it aborts.
 */
export async function untilJobEnds(
  answer: OpenAnswer,
  job: Pick<JobRecord, 'id' | 'owner'>,
  format: ResponseFormat | 'stream',
  deps: LongAnswerDeps,
): Promise<JobRecord | null> {
  const clock = deps.clock ?? systemClock;
  const padding =
    format === 'stream' ? ': keep-alive\n\n' : OPENAI_CONTENT_TYPES[format] === 'application/json' ? ' ' : null;
  let lastWrite = clock.now();
  for (;;) {
    const state = deps.store.jobLifecycle(job.id);
    if (state === null || !isLive(state.status)) return deps.store.getJob(job.id, job.owner);
    await sleep(deps.pollMs, answer.signal, clock);
    if (padding !== null && clock.now() - lastWrite >= deps.keepAliveMs) {
      answer.res.write(padding);
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
