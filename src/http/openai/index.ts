/**
 * OpenAI's audio API in front of the job pipeline: POST /v1/audio/transcriptions and /v1/audio/translations make
 * a normal job (the upload step of POST /v1/jobs: keys, slots, limits, validation, idempotency, cost cap) and
 * answer when it ends, in the body OpenAI gives for the response_format; GET /v1/models lists what can run.
 * An encapsulated plugin whose error handler answers in OpenAI's error shape, so these routes (and only these)
 * do, the key check's 401 included.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { errorReplier } from '../error-replies.ts';
import { RATE_LIMITED_ROUTE } from '../plugins/upload-rate-limit.ts';
import type { JobUploads } from '../routes/upload-job.ts';
import type { ModelListing, Services } from '../services.ts';
import { jobError, openAnswer, shuttingDown, untilJobEnds, type LongAnswerDeps } from './answer.ts';
import { openAIErrorBody } from './errors.ts';
import { GRANULARITIES_FIELD, readFacadeForm, type FacadeRequest, type Task } from './form.ts';
import { OPENAI_CONTENT_TYPES, renderOpenAI } from './render.ts';
import {
  audioResponse,
  Model,
  MODEL_EXAMPLE,
  ModelList,
  ModelParams,
  openAIErrorResponses,
  TranscriptionForm,
  TranslationForm,
} from './schemas.ts';
import { streamTranscript } from './stream.ts';

const AUDIO_ROUTES = new Set(['/v1/audio/transcriptions', '/v1/audio/translations']);

export interface OpenAIRoutesOptions {
  services: Services;
  uploads: JobUploads;
}

const UPLOAD_ERRORS = [
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
] as const;

export default async function openAIRoutes(app: FastifyInstance, opts: OpenAIRoutesOptions): Promise<void> {
  const { services, uploads } = opts;
  const isUpload = (request: FastifyRequest) =>
    request.method === 'POST' && AUDIO_ROUTES.has(request.routeOptions.url ?? '');
  app.setErrorHandler(errorReplier({ events: services.events, isUpload, body: openAIErrorBody }));

  const deps: LongAnswerDeps = {
    store: services.store,
    // The job feed's settings: how often a job's rows are read, and how often an idle answer says it is alive.
    pollMs: services.config.events.pollMs,
    keepAliveMs: services.config.events.heartbeatMs,
  };
  // Answers still waiting when the server closes are ended (the job resumes at the next start).
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort(new Error('the server is closing')));

  function audioRoute(task: Task) {
    const form = {
      fields: (received: Parameters<typeof readFacadeForm>[0]): FacadeRequest =>
        readFacadeForm(received, task, { validateFields: services.validateFields, models: services.listModels }),
      repeatable: [GRANULARITIES_FIELD],
    };
    return async (request: FastifyRequest, reply: FastifyReply) => {
      let answer: FacadeRequest['answer'] | undefined;
      const outcome = await uploads.accept(request, reply, {
        ...form,
        fields: (received) => {
          const read = form.fields(received);
          answer = read.answer;
          return read;
        },
      });
      if (outcome.kind !== 'job') throw new AppError('INTERNAL', 'An OpenAI request cannot be a dry run.');
      // A replayed Idempotency-Key (the SDKs send one and reuse it on retry) answers the job it made first.
      const how = answer ?? { format: 'json', stream: false, words: false };
      const { job } = outcome;
      if (how.stream) return streamTranscript(request, reply, job, { ...deps, feed: services.feed }, closing.signal);
      const contentType = OPENAI_CONTENT_TYPES[how.format];
      const padding = contentType === 'application/json' ? ' ' : null;
      const open = openAnswer(request, reply, job, contentType, padding, closing.signal);
      const log = request.log.child({ jobId: job.id });
      try {
        const ended = await untilJobEnds(open, job, deps);
        const transcript = ended?.status === 'completed' ? services.store.getTranscript(job.id) : null;
        if (!ended || !transcript) {
          log.info({ status: ended?.status ?? 'deleted' }, 'openai answer: the job did not complete');
          open.fail(jobError(ended));
          return;
        }
        open.end(
          renderOpenAI({
            transcript,
            format: how.format,
            task,
            words: how.words,
            temperature: ended.request.temperature ?? 0,
            requestedLanguage: ended.request.language,
          }),
        );
      } catch (err) {
        if (open.clientGone()) {
          log.info('openai answer: the client went away; the job runs on');
          return;
        }
        if (closing.signal.aborted) {
          open.fail(shuttingDown());
          return;
        }
        log.error({ err }, 'openai answer failed');
        open.fail(new AppError('INTERNAL', 'Internal server error.', { cause: err }));
      }
    };
  }

  app.post(
    '/v1/audio/transcriptions',
    {
      schema: {
        summary: 'Transcribe a recording (OpenAI-compatible)',
        description:
          "OpenAI's createTranscription, for any length: a normal job (listed in /v1/jobs), answered when it ends. " +
          'Set the client timeout above the longest job (the openai SDK: `timeout`, default 10 minutes).',
        operationId: 'openaiCreateTranscription',
        tags: ['openai'],
        consumes: ['multipart/form-data'],
        body: TranscriptionForm,
        response: { 200: audioResponse(true), ...openAIErrorResponses(...UPLOAD_ERRORS) },
      },
      config: RATE_LIMITED_ROUTE,
      // The schema documents the form; the handler reads it as it streams (as POST /v1/jobs does).
      validatorCompiler: () => () => true,
    },
    audioRoute('transcribe'),
  );

  app.post(
    '/v1/audio/translations',
    {
      schema: {
        summary: 'Translate a recording into English (OpenAI-compatible)',
        description: 'As the transcriptions route, for models that translate (GET /v1/models: `translation`).',
        operationId: 'openaiCreateTranslation',
        tags: ['openai'],
        consumes: ['multipart/form-data'],
        body: TranslationForm,
        response: { 200: audioResponse(false), ...openAIErrorResponses(...UPLOAD_ERRORS) },
      },
      config: RATE_LIMITED_ROUTE,
      validatorCompiler: () => () => true,
    },
    audioRoute('translate'),
  );

  const modelOf = (m: ModelListing) => ({
    id: m.id,
    object: 'model' as const,
    created: 0,
    owned_by: 'chunkscribe',
    default: m.default,
    translation: m.translation,
    word_timestamps: m.wordTimes,
    languages: m.languages === null ? null : [...m.languages],
  });

  app.get(
    '/v1/models',
    {
      schema: {
        summary: 'The models this service can run (OpenAI-compatible)',
        operationId: 'openaiListModels',
        tags: ['openai'],
        response: {
          200: {
            description: 'The default model first.',
            content: { 'application/json': { schema: ModelList, example: { object: 'list', data: [MODEL_EXAMPLE] } } },
          },
          ...openAIErrorResponses('UNAUTHORIZED', 'INTERNAL'),
        },
      },
    },
    async () => ({ object: 'list' as const, data: services.listModels().map(modelOf) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/models/:id',
    {
      schema: {
        summary: 'One model (OpenAI-compatible)',
        operationId: 'openaiRetrieveModel',
        tags: ['openai'],
        params: ModelParams,
        response: {
          200: {
            description: 'The model.',
            content: { 'application/json': { schema: Model, example: MODEL_EXAMPLE } },
          },
          ...openAIErrorResponses('UNAUTHORIZED', 'NOT_FOUND', 'INTERNAL'),
        },
      },
    },
    async (request) => {
      const found = services.listModels().find((m) => m.id === request.params.id);
      if (!found) {
        throw new AppError(
          'NOT_FOUND',
          `The model ${JSON.stringify(request.params.id.slice(0, 100))} does not exist.`,
          {
            details: { field: 'model' },
          },
        );
      }
      return modelOf(found);
    },
  );
}
