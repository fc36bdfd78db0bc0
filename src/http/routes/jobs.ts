import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from '../json-schema.ts';
import { AppError } from '../../errors.ts';
import { JOB_EXAMPLE, JOB_LIST_EXAMPLE, TRANSCRIPT_EXAMPLE, TRANSCRIPT_TEXT_EXAMPLES } from '../examples.ts';
import { errorResponses, jsonResponse } from '../response-schemas.ts';
import {
  DEFAULT_LIST_LIMIT,
  DEFAULT_TRANSCRIPT_FORMAT,
  JobIdParams,
  JobList,
  ListQuery,
  Transcript,
  TranscriptQuery,
} from '../schemas.ts';
import { isJobId } from '../../jobs/ids.ts';
import { toJobResource } from '../job-resource.ts';
import type { JobRecord } from '../../jobs/types.ts';
import type { Services } from '../services.ts';
import { transcriptFor } from '../../jobs/transcript.ts';
import { renderTranscript } from '../../transcribe/formats.ts';

const JOB_RESOURCE = Type.Ref('JobResource');

export default async function jobRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { store, dirs, uploads, runner, storage } = opts.services;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();

  // Another key's job is indistinguishable from one that never existed.
  const notFound = (id: string) => new AppError('NOT_FOUND', `No job ${JSON.stringify(id)}.`);

  /** A job the caller may see, or 404. */
  async function findJob(id: string, owner: string | null): Promise<JobRecord> {
    const job = isJobId(id) ? await store.getJob(id, owner) : null;
    if (!job) throw notFound(id);
    return job;
  }

  /** The resource as a listing sees it: built from the stored rows, chunk results left unread. */
  async function resourceOf(job: JobRecord, now: number) {
    return toJobResource(job, await store.listChunkStates(job.id), now, storage.waiting());
  }

  api.get(
    '/v1/jobs',
    {
      schema: {
        summary: 'List jobs, newest first',
        operationId: 'listJobs',
        tags: ['jobs'],
        querystring: ListQuery,
        response: {
          200: jsonResponse(
            "The caller's jobs; next_cursor asks for the next page (null on the last).",
            JobList,
            JOB_LIST_EXAMPLE,
          ),
          ...errorResponses('INVALID_FIELD', 'UNAUTHORIZED', 'RATE_LIMITED', 'INTERNAL'),
        },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const page = await store.listJobs({ owner: request.owner, status, limit: limit ?? DEFAULT_LIST_LIMIT, cursor });
      const now = Date.now();
      return { items: await Promise.all(page.items.map((job) => resourceOf(job, now))), next_cursor: page.nextCursor };
    },
  );

  api.get(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'Poll a job',
        operationId: 'getJob',
        tags: ['jobs'],
        params: JobIdParams,
        response: {
          200: jsonResponse('The job, its progress and its result.', JOB_RESOURCE, JOB_EXAMPLE),
          ...errorResponses('UNAUTHORIZED', 'NOT_FOUND', 'RATE_LIMITED', 'INTERNAL'),
        },
      },
    },
    async (request) => {
      const view = isJobId(request.params.id) ? await store.pollView(request.params.id, request.owner) : null;
      if (!view) throw notFound(request.params.id);
      return toJobResource(view.job, view.chunks, Date.now(), storage.waiting());
    },
  );

  api.get(
    '/v1/jobs/:id/transcript',
    {
      schema: {
        summary: 'The stitched transcript',
        description:
          'json, txt, srt or vtt; before completion 409 JOB_NOT_COMPLETED, or with partial=true the chunks finished so far.',
        operationId: 'getTranscript',
        tags: ['jobs'],
        params: JobIdParams,
        querystring: TranscriptQuery,
        response: {
          200: {
            description: 'The transcript in the asked format.',
            headers: {
              'x-transcript-partial': Type.Literal('true', { description: 'Sent with a partial transcript only.' }),
            },
            content: {
              'application/json': { schema: Transcript, example: TRANSCRIPT_EXAMPLE },
              'text/plain': { schema: Type.String(), example: TRANSCRIPT_TEXT_EXAMPLES.txt },
              'application/x-subrip': { schema: Type.String(), example: TRANSCRIPT_TEXT_EXAMPLES.srt },
              'text/vtt': { schema: Type.String(), example: TRANSCRIPT_TEXT_EXAMPLES.vtt },
            },
          },
          ...errorResponses(
            'INVALID_FIELD',
            'UNAUTHORIZED',
            'NOT_FOUND',
            'JOB_NOT_COMPLETED',
            'RATE_LIMITED',
            'INTERNAL',
          ),
        },
      },
    },
    async (request, reply) => {
      const job = await findJob(request.params.id, request.owner);
      const partial = request.query.partial === 'true' || request.query.partial === '1';
      let transcript = job.status === 'completed' ? await store.getTranscript(job.id) : null;
      if (!transcript && partial) {
        transcript = transcriptFor(job, await store.listChunks(job.id), { partial: true });
        reply.header('x-transcript-partial', 'true');
      }
      if (!transcript) {
        throw new AppError(
          'JOB_NOT_COMPLETED',
          `The job is ${job.status}; its transcript is ready when it is completed (or ask with partial=true).`,
          {
            details: { status: job.status },
          },
        );
      }
      // Rendered to text here (the json format too), so the response schema documents it but never reshapes it.
      const rendered = renderTranscript(transcript, request.query.format ?? DEFAULT_TRANSCRIPT_FORMAT, {
        cues: request.query.cues ?? 'segments',
      });
      return reply.type(rendered.contentType).send(rendered.body);
    },
  );

  api.delete(
    '/v1/jobs/:id',
    {
      schema: {
        summary: 'Cancel a job if it runs, then delete its audio, chunks and transcript',
        operationId: 'deleteJob',
        tags: ['jobs'],
        params: JobIdParams,
        response: {
          204: Type.Null({ description: 'Deleted.' }),
          ...errorResponses('UNAUTHORIZED', 'NOT_FOUND', 'RATE_LIMITED', 'SERVER_BUSY', 'INTERNAL'),
        },
      },
    },
    async (request, reply) => {
      const job = await findJob(request.params.id, request.owner);
      await runner.cancel(job.id);
      // The objects before the row: a store that does not answer gets 503 and the job stays, to be deleted again.
      await uploads.remove(job.id);
      await store.deleteJob(job.id);
      await dirs.remove(job.id);
      request.log.info({ jobId: job.id, was: job.status }, 'job deleted');
      return reply.code(204).send(null);
    },
  );
}
