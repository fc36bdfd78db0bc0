import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { SSEMessage } from '@fastify/sse';
import type { FastifyInstance } from 'fastify';
import { Type } from '../json-schema.ts';
import { AppError } from '../../errors.ts';
import type { JobFeedEvent } from '../../jobs/job-feed.ts';
import { monotonicClock } from '../../transcribe/backoff.ts';
import { atDeadline } from '../../transcribe/deadline-timer.ts';
import { JOB_EVENTS_EXAMPLE } from '../examples.ts';
import { errorResponses } from '../response-schemas.ts';
import { JobIdParams } from '../schemas.ts';
import type { Services } from '../services.ts';
import { clientOf } from '../client-address.ts';

/** One SSE message per feed event: the event's type names it, its id resumes after it, the rest is the data. */
export function toMessage(event: JobFeedEvent): SSEMessage {
  switch (event.type) {
    case 'progress':
      return { id: event.id, event: 'progress', data: event.job };
    case 'text':
      return {
        id: event.id,
        event: 'text',
        data: { chunk: event.chunk, start: event.start, end: event.end, text: event.text },
      };
    case 'end':
      return { id: event.id, event: 'end', data: { status: event.status, error: event.error } };
  }
}

async function* messages(events: AsyncIterable<JobFeedEvent>): AsyncIterable<SSEMessage> {
  for await (const event of events) yield toMessage(event);
}

export interface StreamSlots {
  /** Takes a stream slot for `holder`; throws RATE_LIMITED when the holder, or the process, has every one. */
  take(holder: string): { release(): void };
  open(): number;
}

/** Bounds the event streams open at once, per key (or address in open mode) and in the whole process. */
export function createStreamSlots(limits: { perHolder: number; total: number; retryAfterS: number }): StreamSlots {
  const held = new Map<string, number>();
  let total = 0;
  const refuse = (message: string, details: Record<string, unknown>) =>
    new AppError('RATE_LIMITED', message, { retryAfterS: limits.retryAfterS, retryable: true, details });
  return {
    take(holder) {
      const mine = held.get(holder) ?? 0;
      if (mine >= limits.perHolder) {
        throw refuse(`At most ${limits.perHolder} event streams from one client at once; close one first.`, {
          reason: 'concurrent_event_streams',
          limit: limits.perHolder,
        });
      }
      if (total >= limits.total) {
        throw refuse('The server has as many event streams open as it allows; retry later, or poll the job.', {
          reason: 'event_streams_full',
          limit: limits.total,
        });
      }
      held.set(holder, mine + 1);
      total += 1;
      let given = false;
      return {
        release() {
          if (given) return;
          given = true;
          total -= 1;
          const left = (held.get(holder) ?? 1) - 1;
          if (left > 0) held.set(holder, left);
          else held.delete(holder);
        },
      };
    },
    open: () => total,
  };
}

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      maxLength: 32,
      description: 'The id of the last event received, to resume after it (browsers send it when they reconnect).',
    }),
  ),
});

/**
 * GET /v1/jobs/{id}/events: the job's live events as Server-Sent Events, behind the same key and owner scoping as
 * GET /v1/jobs/{id}. Each stream is bounded: in number (per key and per process) and in lifetime, after which the
 * client reconnects with Last-Event-ID. The stream ends after the `end` event.
 */
export default async function jobEventRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { feed, config } = opts.services;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const slots = createStreamSlots({
    perHolder: config.events.streamsPerKeyMax,
    total: config.events.streamsMax,
    retryAfterS: config.pressure.retryAfterS,
  });
  /** Streams open now: a closing server ends them, or their sockets would hold its close until their lifetime. */
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort(new Error('server closing'));
  });

  api.get(
    '/v1/jobs/:id/events',
    {
      // No Accept negotiation: this route serves only an event stream, and its refusals are our JSON errors.
      sse: 'manual',
      schema: {
        summary: 'Follow a job live (Server-Sent Events)',
        description:
          "Events `progress` (the job's status and counts, sent when they change), `text` (a chunk's stitched text, " +
          'final, in chunk order, as soon as it and every chunk before it are done: the `text` of all text events ' +
          "joined is the transcript's `text`) and `end` (the final status and error), each with an `id`; the stream " +
          'closes after `end`. Send the last id received as `Last-Event-ID` to resume with nothing repeated or ' +
          'missed. A comment line keeps a quiet stream open; a stream is closed after EVENT_STREAM_MAX_S (reconnect ' +
          'with Last-Event-ID).',
        operationId: 'followJob',
        tags: ['jobs'],
        params: JobIdParams,
        headers: EventsHeaders,
        response: {
          200: {
            description: 'The event stream.',
            content: { 'text/event-stream': { schema: Type.String(), example: JOB_EVENTS_EXAMPLE } },
          },
          ...errorResponses('INVALID_FIELD', 'UNAUTHORIZED', 'NOT_FOUND', 'RATE_LIMITED', 'INTERNAL'),
        },
      },
    },
    async (request, reply) => {
      const stop = new AbortController();
      // Throws NOT_FOUND or INVALID_FIELD before anything is written, so those are ordinary error answers.
      const events = await feed.follow(request.params.id, {
        owner: request.owner,
        lastEventId: request.headers['last-event-id'],
        signal: stop.signal,
      });
      if (request.method === 'HEAD') {
        // HEAD gets GET's checks and headers but no stream: streaming it would hold a slot and a socket for the
        // stream's lifetime, with nothing ever read.
        stop.abort(new Error('HEAD'));
        return reply.header('content-type', 'text/event-stream').header('cache-control', 'no-cache').send('');
      }
      const slot = slots.take(request.owner ?? `address:${clientOf(request.ip)}`);
      streams.add(stop);
      reply.sse.onClose(() => stop.abort(new Error('client gone')));
      // The process's own clock: a wall clock step back would keep the stream (and its slot) open that much longer.
      const lifetime = atDeadline(monotonicClock, monotonicClock.now() + config.events.maxStreamMs, () =>
        stop.abort(new Error('stream lifetime reached')),
      );
      try {
        reply.sse.sendHeaders();
        await reply.sse.send(messages(events));
      } finally {
        // However the stream ended (a client gone before onClose was registered, a failed write), the follow
        // stops at its next step rather than polling on until the job next changes.
        stop.abort(new Error('stream ended'));
        lifetime.cancel();
        slot.release();
        streams.delete(stop);
      }
    },
  );
}
