import type { TranscriptionProvider } from './types.ts';

/**
 * A provider whose module is imported on its first call rather than at start: an engine's SDK can be the
 * largest thing an idle service holds (the openai SDK is ~5 MiB of RSS), and a service that has taken no job
 * has no use for it. Every call waits for the one import; a failed import fails that call and is tried again
 * by the next (a transient cause, say a file briefly unreadable, must not disable the engine until a restart).
 */
export function lazyProvider(
  name: TranscriptionProvider['name'],
  models: readonly string[],
  load: () => Promise<TranscriptionProvider>,
  /**
   * A check that needs no import (the engine's own light one): the service asks it at start and keeps it warm, so
   * without it the SDK would be loaded at start after all. @default the loaded provider's check
   */
  check?: TranscriptionProvider['check'],
): TranscriptionProvider {
  let loading: Promise<TranscriptionProvider> | undefined;
  const provider = (): Promise<TranscriptionProvider> => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
  return {
    name,
    models,
    transcribe: async (input) => (await provider()).transcribe(input),
    check: check ?? (async (signal) => (await provider()).check(signal)),
    // An upload is coming: the import overlaps it instead of the first chunk's request. A failure is tried again there.
    prepare: () => void provider().catch(() => undefined),
  };
}
