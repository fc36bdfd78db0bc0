import { AppError } from '../../../errors.ts';
import type { Engine } from '../../engine.ts';
import { OPENAI_CHUNKS, OPENAI_MODELS, openAIModel } from './models.ts';
import { createOpenAIProvider } from './provider.ts';

/** OpenAI, or any server speaking its audio API (OPENAI_BASE_URL). */
export const openaiEngine: Engine = {
  defaultModel: 'whisper-1',
  models: OPENAI_MODELS,
  unknownModel: openAIModel,
  chunks: OPENAI_CHUNKS,
  // Long chunks: every request costs a round trip and counts against the account's rate limit.
  defaults: () => ({ chunkSeconds: 600, overlapSeconds: 1, concurrency: 3 }),
  create(config, logger) {
    if (!config.openai.apiKey) {
      throw new AppError('PROVIDER_AUTH', 'OPENAI_API_KEY is not set', { retryable: false });
    }
    return createOpenAIProvider({ logger, apiKey: config.openai.apiKey, baseURL: config.openai.baseURL });
  },
};
