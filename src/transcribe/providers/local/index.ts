import type { Engine } from '../../engine.ts';
import { LOCAL_CHUNKS, LOCAL_MODELS, localModel } from './models.ts';
import { createLocalProvider } from './provider.ts';

/** pocketsphinx on this machine: no account, no network, US English. */
export const localEngine: Engine = {
  defaultModel: 'pocketsphinx-en-us',
  models: LOCAL_MODELS,
  unknownModel: localModel,
  chunks: LOCAL_CHUNKS,
  create: (_backend, config, logger) => createLocalProvider({ logger, modelDir: config.pocketsphinxModelDir }),
};
