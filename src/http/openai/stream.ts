/**
 * stream=true: OpenAI's transcription events as Server-Sent Events, built on the job feed (src/jobs/job-feed.ts):
 * one `transcript.text.delta` per chunk as soon as it and every chunk before it are final, in order (the deltas
 * joined are the transcript's text), then `transcript.text.done` with the whole text. A job that does not complete
 * ends the stream with an event carrying OpenAI's error object, which the SDKs' stream iterators throw as an
 * APIError. A comment line every keep-alive interval holds proxies open. A client that goes away stops the
 * following only: the job runs on, found by the x-job-id header.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { JobFeed } from '../../jobs/job-feed.ts';
import type { JobStore } from '../../jobs/job-store.ts';
import type { JobRecord } from '../../jobs/types.ts';
import { jobError, openAnswer, shuttingDown } from './answer.ts';
import { openAIErrorBody } from './errors.ts';

export interface StreamDeps {
  feed: JobFeed;
  store: Pick<JobStore, 'getJob' | 'getTranscript'>;
  keepAliveMs: number;
}

const event = (data: object) => `data: ${JSON.stringify(data)}\n\n`;

export async function streamTranscript(
  request: FastifyRequest,
  reply: FastifyReply,
  job: JobRecord,
  deps: StreamDeps,
  closing: AbortSignal,
): Promise<void> {
  const open = openAnswer(request, reply, job, 'text/event-stream; charset=utf-8', ': keep-alive\n\n', closing);
  const log = request.log.child({ jobId: job.id });
  // The feed waits on the store between its reads; a comment line keeps the response from looking idle meanwhile.
  const keepAlive = setInterval(() => open.keepAlive(), deps.keepAliveMs);
  keepAlive.unref();
  try {
    for await (const e of await deps.feed.follow(job.id, { owner: job.owner, signal: open.signal })) {
      if (open.signal.aborted) break;
      if (e.type === 'text') open.write(event({ type: 'transcript.text.delta', delta: e.text }));
      if (e.type !== 'end') continue;
      const ended = await deps.store.getJob(job.id, job.owner);
      const transcript = ended?.status === 'completed' ? await deps.store.getTranscript(job.id) : null;
      if (!transcript) {
        // The SDKs' stream iterators throw an event whose data has `error` as an APIError.
        open.end(event(openAIErrorBody(jobError(ended))));
        return;
      }
      open.end(event({ type: 'transcript.text.done', text: transcript.text }));
      return;
    }
    if (open.clientGone()) log.info('openai stream: the client went away; the job runs on');
    else open.fail(shuttingDown(), true);
  } catch (err) {
    log.error({ err }, 'openai stream failed');
    open.fail(new AppError('INTERNAL', 'Internal server error.', { cause: err }), true);
  } finally {
    clearInterval(keepAlive);
  }
}
