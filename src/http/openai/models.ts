/** GET /v1/models and /v1/models/:id: the models a job may name (Services.listModels), in OpenAI's shape. */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import type { ModelListing, Services } from '../services.ts';
import { Model, MODEL_EXAMPLE, ModelList, ModelParams, openAIErrorResponses } from './schemas.ts';

export async function modelRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts;
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
          ...openAIErrorResponses('UNAUTHORIZED', 'RATE_LIMITED', 'INTERNAL'),
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
          ...openAIErrorResponses('UNAUTHORIZED', 'NOT_FOUND', 'RATE_LIMITED', 'INTERNAL'),
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
