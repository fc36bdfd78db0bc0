/**
 * POST /v1/audio/transcriptions and /v1/audio/translations: the upload step of POST /v1/jobs with OpenAI's form,
 * then the answer when the job ends (answer.ts), or its events (stream.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { RATE_LIMITED_ROUTE } from '../plugins/upload-rate-limit.ts';
import { UPLOAD_ERROR_CODES, type JobUploads, type UploadRoute } from '../routes/upload-job.ts';
import type { Services } from '../services.ts';
import { jobError, openAnswer, shuttingDown, untilJobEnds, type LongAnswerDeps } from './answer.ts';
import { answerOptions, GRANULARITIES_FIELD, readFacadeForm, type AnswerOptions, type Task } from './form.ts';
import type { JobRecord } from '../../jobs/types.ts';
import { OPENAI_CONTENT_TYPES, renderOpenAI } from './render.ts';
import { audioResponse, openAIErrorResponses, TranscriptionForm, TranslationForm } from './schemas.ts';
import { streamTranscript } from './stream.ts';

export const AUDIO_ROUTES = new Set(['/v1/audio/transcriptions', '/v1/audio/translations']);

export interface AudioRoutesOptions {
  services: Services;
  uploads: JobUploads;
  /** Aborted when the server closes: the answers still waiting end then. */
  closing: AbortSignal;
}

export async function audioRoutes(app: FastifyInstance, opts: AudioRoutesOptions): Promise<void> {
  const { services, uploads, closing } = opts;
  const deps: LongAnswerDeps = {
    store: services.store,
    // The job feed's settings: how often a job's rows are read, and how often an idle answer says it is alive.
    pollMs: services.config.events.pollMs,
    keepAliveMs: services.config.events.heartbeatMs,
  };

  function audioRoute(task: Task) {
    const form: UploadRoute = {
      fields: (received) =>
        readFacadeForm(received, task, { validateFields: services.validateFields, models: services.listModels }),
      repeatable: [GRANULARITIES_FIELD],
      fingerprintTag: `openai-${task}`,
    };
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const outcome = await uploads.accept(request, reply, form);
      if (outcome.kind !== 'job') throw new AppError('INTERNAL', 'An OpenAI request cannot be a dry run.');
      // Read from the form, so a repeated Idempotency-Key answers the job it made first in the form asked.
      const how = answerOptions(outcome.received, task);
      const { job } = outcome;
      if (how.stream) return streamTranscript(request, reply, job, { ...deps, feed: services.feed }, closing);
      return answerWhenEnded({ request, reply, job, how, task }, deps, closing);
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
        response: { 200: audioResponse(true), ...openAIErrorResponses(...UPLOAD_ERROR_CODES) },
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
        response: { 200: audioResponse(false), ...openAIErrorResponses(...UPLOAD_ERROR_CODES) },
      },
      config: RATE_LIMITED_ROUTE,
      validatorCompiler: () => () => true,
    },
    audioRoute('translate'),
  );
}

interface Answering {
  request: FastifyRequest;
  reply: FastifyReply;
  job: JobRecord;
  how: AnswerOptions;
  task: Task;
}

/** The answer of a non-streamed request: headers now, the body when the job ends (answer.ts says how). */
async function answerWhenEnded(a: Answering, deps: LongAnswerDeps, closing: AbortSignal): Promise<void> {
  const { job, how } = a;
  const contentType = OPENAI_CONTENT_TYPES[how.format];
  const padding = contentType === 'application/json' ? ' ' : null;
  const open = openAnswer(a.request, a.reply, job, contentType, padding, closing);
  const log = a.request.log.child({ jobId: job.id });
  try {
    const ended = await untilJobEnds(open, job, deps);
    const transcript = ended?.status === 'completed' ? await deps.store.getTranscript(job.id) : null;
    if (!ended || !transcript) {
      log.info({ status: ended?.status ?? 'deleted' }, 'openai answer: the job did not complete');
      open.fail(jobError(ended));
      return;
    }
    const { temperature, language } = ended.request;
    const render = { transcript, format: how.format, task: a.task, words: how.words };
    open.end(renderOpenAI({ ...render, temperature: temperature ?? 0, requestedLanguage: language }));
  } catch (err) {
    if (open.clientGone()) {
      log.info('openai answer: the client went away; the job runs on');
      return;
    }
    if (closing.aborted) {
      open.fail(shuttingDown());
      return;
    }
    log.error({ err }, 'openai answer failed');
    open.fail(new AppError('INTERNAL', 'Internal server error.', { cause: err }));
  }
}
