import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import type { Engine } from '../engine.ts';
import type { TranscriptionProvider } from '../types.ts';
import { localEngine } from './local/index.ts';
import { openaiEngine } from './openai/index.ts';

/**
 * Every engine, by the name TRANSCRIBE_PROVIDER gives it: the one list of provider names (config validates against
 * it, ProviderName derives from it). To add an engine:
 * 1. A folder src/transcribe/providers/<name>/ with
 *    - provider.ts: a TranscriptionProvider (src/transcribe/types.ts) whose transcribe() throws a ProviderError
 *      (src/transcribe/provider-error.ts) naming the kind of each failure (or an AppError when it already knows the
 *      service's code), never its SDK's own errors; it reports a used-up rate limit through input.onRateLimit, and
 *      check() says whether it can take work;
 *    - models.ts: its models (caps, segment or chunk timing, languages, price), the stand-in for an unknown
 *      model, and the chunk files it reads (ChunkIntake: which sources it takes as they are, what a re-encode writes);
 *    - index.ts: the Engine (src/transcribe/engine.ts) joining them, with create(config, logger).
 * 2. One line in ENGINES below.
 * 3. Its tests: the failure mapping (each kind it names; see test/unit/openai-errors.test.ts) and the provider
 *    against the real engine or a fake of it on 127.0.0.1 (test/integration/provider-*.test.ts).
 * Settings of its own (a key, a URL, a model directory) are env variables in src/config.ts and rows in the
 * README's configuration table.
 */
export const ENGINES = {
  openai: openaiEngine,
  local: localEngine,
} as const satisfies Record<string, Engine>;

export type ProviderName = keyof typeof ENGINES;

export const PROVIDER_NAMES = Object.keys(ENGINES) as [ProviderName, ...ProviderName[]];

/** The provider of the default model's backend, with a child logger bound to it. */
export function createProvider(config: Config, logger: Logger): TranscriptionProvider {
  const backend = config.backends.find((b) => b.models.some((m) => m.id === config.model)) ?? config.backends[0];
  if (backend === undefined) throw new TypeError('createProvider: the config declares no backend');
  return ENGINES[backend.engine].create(backend, config, logger.child({ provider: backend.name }));
}
