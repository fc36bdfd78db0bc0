import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.ts';
import { isJobId } from '../jobs/ids.ts';
import { toJobResource } from '../jobs/progress.ts';
import type { JobRecord, JobStatus } from '../jobs/types.ts';
import type { Services } from '../services.ts';
import { renderTranscript } from '../transcribe/formats.ts';
import { stitchTranscript } from '../transcribe/stitcher.ts';

const STATUSES: readonly JobStatus[] = ['queued', 'processing', 'completed', 'failed', 'cancelled'];
const FORMATS = ['json', 'txt', 'srt', 'vtt'] as const;
type Format = (typeof FORMATS)[number];

export default async function jobRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { store, dirs, runner } = opts.services;

  /** A job the caller may see, or 404: another key's job is indistinguishable from one that never existed. */
  function findJob(id: string, owner: string | null): JobRecord {
    const job = isJobId(id) ? store.getJob(id, owner) : null;
    if (!job) throw new AppError('NOT_FOUND', `No job ${JSON.stringify(id)}.`);
    return job;
  }

  app.get<{ Querystring: { status?: string; limit?: string; cursor?: string } }>('/v1/jobs', async (request) => {
    const { status, cursor } = request.query;
    if (status !== undefined && !STATUSES.includes(status as JobStatus)) {
      throw new AppError('INVALID_FIELD', `status must be one of ${STATUSES.join(', ')}.`, { details: { field: 'status' } });
    }
    const limit = request.query.limit === undefined ? 20 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new AppError('INVALID_FIELD', 'limit must be a whole number from 1 to 100.', { details: { field: 'limit' } });
    }
    const page = store.listJobs({ owner: request.owner, status: status as JobStatus | undefined, limit, cursor });
    const now = Date.now();
    return {
      items: page.items.map((job) => toJobResource(job, store.listChunks(job.id), now)),
      next_cursor: page.nextCursor,
    };
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (request) => {
    const job = findJob(request.params.id, request.owner);
    return toJobResource(job, store.listChunks(job.id), Date.now());
  });

  app.get<{ Params: { id: string }; Querystring: { format?: string; partial?: string } }>(
    '/v1/jobs/:id/transcript',
    async (request, reply) => {
      const job = findJob(request.params.id, request.owner);
      const format = (request.query.format ?? 'json') as Format;
      if (!FORMATS.includes(format)) {
        throw new AppError('INVALID_FIELD', `format must be one of ${FORMATS.join(', ')}.`, { details: { field: 'format' } });
      }
      const partial = request.query.partial === 'true' || request.query.partial === '1';
      let transcript = job.status === 'completed' ? store.getTranscript(job.id) : null;
      if (!transcript && partial) {
        const done = store.listChunks(job.id).filter((c) => c.status === 'done');
        transcript = stitchTranscript({
          jobId: job.id,
          durationS: job.audio.duration_s,
          chunks: done.map((c) => ({ index: c.index, startS: c.startS, durationS: c.durationS, status: c.status, result: c.result })),
          overlapS: 0,
        });
        reply.header('x-transcript-partial', 'true');
      }
      if (!transcript) {
        throw new AppError('JOB_NOT_COMPLETED', `The job is ${job.status}; its transcript is ready when it is completed (or ask with partial=true).`, {
          details: { status: job.status },
        });
      }
      const rendered = renderTranscript(transcript, format);
      return reply.type(rendered.contentType).send(rendered.body);
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (request, reply) => {
    const job = findJob(request.params.id, request.owner);
    await runner.cancel(job.id);
    store.deleteJob(job.id);
    await dirs.remove(job.id);
    request.log.info({ jobId: job.id, was: job.status }, 'job deleted');
    return reply.code(204).send();
  });
}
