import { setTimeout as delay } from 'node:timers/promises';
import type { JobResource } from '../http/schemas.ts';
import { isLive } from '../jobs/types.ts';
import { ApiError, type ApiClient } from './api-client.ts';
import type { ServerSentEvent } from './event-stream.ts';

export interface FollowOptions {
  client: Pick<ApiClient, 'getJob' | 'jobEvents'>;
  id: string;
  intervalMs: number;
  onUpdate: (job: JobResource) => void;
  /** Each chunk's final text as the job's event stream brings it (in order; polling brings none). */
  onText?: (text: string, chunk: number) => void;
  signal?: AbortSignal;
  /** Consecutive transient failures (no answer, 429, 503, a stream cut off) tolerated before giving up. */
  maxTransientErrors?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function isTransient(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status === 503);
}

/**
 * Follows the job until it is completed, failed or cancelled, and returns that last state: through its event
 * stream, or by polling where the server has none (an older server: 404) or no stream to spare (429).
 */
export async function followJob(options: FollowOptions): Promise<JobResource> {
  return (await followStream(options)) ?? pollJob(options);
}

const sleeper = (options: FollowOptions) =>
  options.sleep ?? ((ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal }));

/** The server has no event stream (an older one: 404) or none to spare (429): the follow polls instead. */
const noStream = (err: unknown) => err instanceof ApiError && (err.status === 404 || err.status === 429);

/**
 * What one event means for the follow: a text goes to onText; progress and the end read the job resource once
 * for the reporter, and the end returns it.
 */
async function onEvent(options: FollowOptions, event: ServerSentEvent): Promise<JobResource | null> {
  if (event.event === 'text') {
    const data = JSON.parse(event.data) as { text: string; chunk: number };
    options.onText?.(data.text, data.chunk);
    return null;
  }
  if (event.event !== 'progress' && event.event !== 'end') return null;
  const job = await options.client.getJob(options.id, options.signal);
  options.onUpdate(job);
  return event.event === 'end' && !isLive(job.status) ? job : null;
}

/**
 * Reads the job's event stream to its end event, reconnecting with the last event id when it closes before (its
 * lifetime, a restart) or breaks: no text is repeated or missed. Null when the server will not stream this job.
 */
async function followStream(options: FollowOptions): Promise<JobResource | null> {
  const { client, id, signal } = options;
  const sleep = sleeper(options);
  const maxTransient = options.maxTransientErrors ?? 10;
  let lastId: string | null = null;
  let transient = 0;
  for (;;) {
    try {
      for await (const event of await client.jobEvents(id, { lastEventId: lastId, signal })) {
        transient = 0;
        lastId = event.id ?? lastId;
        const ended = await onEvent(options, event);
        if (ended) return ended;
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      if (lastId === null && noStream(err)) return null;
      // A stream cut off mid-way (a reset connection, bytes that are not an event stream) is retried like no answer.
      if ((err instanceof ApiError && !isTransient(err)) || ++transient > maxTransient) throw err;
      await sleep(options.intervalMs * Math.min(2 ** transient, 8), signal);
    }
  }
}

/**
 * Polls the job until it has ended. A restart of the service or a busy moment must not kill a long follow, so a
 * few transient errors in a row are waited out.
 */
async function pollJob(options: FollowOptions): Promise<JobResource> {
  const sleep = sleeper(options);
  const maxTransient = options.maxTransientErrors ?? 10;
  let transient = 0;
  for (;;) {
    let job: JobResource;
    try {
      job = await options.client.getJob(options.id, options.signal);
      transient = 0;
    } catch (err) {
      if (!isTransient(err) || ++transient > maxTransient) throw err;
      await sleep(options.intervalMs * Math.min(2 ** transient, 8), options.signal);
      continue;
    }
    options.onUpdate(job);
    if (!isLive(job.status)) return job;
    await sleep(options.intervalMs, options.signal);
  }
}
