import { AppError } from '../../../errors.ts';
import type { Engine } from '../../engine.ts';
import { lazyProvider } from '../../lazy-provider.ts';
import { createModelsCheck } from './models-check.ts';
import { OPENAI_CHUNKS, OPENAI_MODELS, openAIModel } from './models.ts';

/** OpenAI, or any server speaking its audio API (OPENAI_BASE_URL). */
export const openaiEngine: Engine = {
  defaultModel: 'whisper-1',
  models: OPENAI_MODELS,
  unknownModel: openAIModel,
  chunks: OPENAI_CHUNKS,
  // Long chunks: every request costs a round trip and counts against the account's rate limit.
  defaults: () => ({ chunkSeconds: 600, overlapSeconds: 1, concurrency: 3 }),
  create(backend, _config, logger) {
    // A self-hosted server may need no key; api.openai.com always does (the config refuses it without one).
    const apiKey = backend.apiKey ?? (backend.baseURL === undefined ? undefined : 'unused');
    if (apiKey === undefined) {
      throw new AppError('PROVIDER_AUTH', `backend ${backend.name}: no API key is set`, { retryable: false });
    }
    // The SDK is imported when the first upload begins (or with the first chunk), not at start: see lazyProvider.
    // The check, asked at start, goes without it.
    return lazyProvider(
      'openai',
      backend.models.map((m) => m.id),
      async () => {
        const { createOpenAIProvider } = await import('./provider.ts');
        return createOpenAIProvider({ logger, apiKey, baseURL: backend.baseURL, models: backend.models });
      },
      createModelsCheck({ apiKey, baseURL: backend.baseURL }),
    );
  },
};
