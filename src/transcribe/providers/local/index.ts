import type { Engine } from '../../engine.ts';
import { LOCAL_CHUNKS, LOCAL_MODELS, LOCAL_OVERLAP_S, localModel } from './models.ts';
import { createLocalProvider } from './provider.ts';

/** pocketsphinx on this machine: no account, no network, US English. */
export const localEngine: Engine = {
  defaultModel: 'pocketsphinx-en-us',
  models: LOCAL_MODELS,
  unknownModel: localModel,
  chunks: LOCAL_CHUNKS,
  /*
   * No request cost, rate limit or size cap: short chunks, one per core, so a file of a few minutes keeps every
   * core busy and its progress moves chunk by chunk. 45 s: a 6.4 min file gives 9 chunks (balanced over 2 cores,
   * each 2-3 % model load on top); the overlap at a hard cut is the measured LOCAL_OVERLAP_S.
   */
  defaults: (cores) => ({ chunkSeconds: 45, overlapSeconds: LOCAL_OVERLAP_S, concurrency: Math.max(1, cores) }),
  create: (_backend, config, logger) => createLocalProvider({ logger, modelDir: config.pocketsphinxModelDir }),
};
