/**
 * OpenAI's audio API in front of the job pipeline: POST /v1/audio/transcriptions and /v1/audio/translations make
 * a normal job (the upload step of POST /v1/jobs: keys, slots, limits, validation, idempotency, cost cap) and
 * answer when it ends, in the body OpenAI gives for the response_format; GET /v1/models lists what can run.
 * An encapsulated plugin whose error handler answers in OpenAI's error shape, so these routes (and only these)
 * do, the key check's 401 included.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorReplier } from '../error-replies.ts';
import type { JobUploads } from '../routes/upload-job.ts';
import type { Services } from '../services.ts';
import { AUDIO_ROUTES, audioRoutes } from './audio.ts';
import { openAIErrorBody } from './errors.ts';
import { modelRoutes } from './models.ts';

export interface OpenAIRoutesOptions {
  services: Services;
  uploads: JobUploads;
}

export default async function openAIRoutes(app: FastifyInstance, opts: OpenAIRoutesOptions): Promise<void> {
  const { services, uploads } = opts;
  const isUpload = (request: FastifyRequest) =>
    request.method === 'POST' && AUDIO_ROUTES.has(request.routeOptions.url ?? '');
  app.setErrorHandler(errorReplier({ events: services.events, isUpload, body: openAIErrorBody }));
  // Answers still waiting when the server closes are ended (the job resumes at the next start).
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort(new Error('the server is closing')));
  // Registered as plain functions, not plugins: they share this context's error handler and hooks.
  await audioRoutes(app, { services, uploads, closing: closing.signal });
  await modelRoutes(app, { services });
}
