import { AppError } from '../../../errors.ts';
import type { Engine } from '../../engine.ts';
import { lazyProvider } from '../../lazy-provider.ts';
import { OPENAI_CHUNKS, OPENAI_MODELS, openAIModel } from './models.ts';

/** OpenAI, or any server speaking its audio API (OPENAI_BASE_URL). */
export const openaiEngine: Engine = {
  defaultModel: 'whisper-1',
  models: OPENAI_MODELS,
  unknownModel: openAIModel,
  chunks: OPENAI_CHUNKS,
  create(config, logger) {
    if (!config.openai.apiKey) {
      throw new AppError('PROVIDER_AUTH', 'OPENAI_API_KEY is not set', { retryable: false });
    }
    const { apiKey, baseURL } = config.openai;
    // The SDK is imported with the first request (a check or a chunk), not at start: see lazyProvider.
    return lazyProvider(
      'openai',
      OPENAI_MODELS.map((m) => m.id),
      async () => {
        const { createOpenAIProvider } = await import('./provider.ts');
        return createOpenAIProvider({ logger, apiKey, baseURL });
      },
    );
  },
};
