import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import type { TranscriptionProvider } from '../types.ts';
import { createLocalProvider } from './local/provider.ts';
import { createOpenAIProvider } from './openai/provider.ts';

/** The provider config.provider names, with a child logger bound to it. */
export function createProvider(config: Config, logger: Logger): TranscriptionProvider {
  const log = logger.child({ provider: config.provider });
  if (config.provider === 'openai') {
    if (!config.openai.apiKey) {
      throw new AppError('PROVIDER_AUTH', 'OPENAI_API_KEY is not set', { retryable: false });
    }
    return createOpenAIProvider({ logger: log, apiKey: config.openai.apiKey, baseURL: config.openai.baseURL });
  }
  return createLocalProvider({ logger: log, modelDir: config.pocketsphinxModelDir });
}
