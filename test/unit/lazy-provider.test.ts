import { describe, expect, it } from 'vitest';
import { lazyProvider } from '../../src/transcribe/lazy-provider.ts';
import type { ChunkResult, TranscribeInput, TranscriptionProvider } from '../../src/transcribe/types.ts';

const RESULT: ChunkResult = { text: 'hello', language: 'en', segments: [], timing: 'chunk' };

const input: TranscribeInput = {
  jobId: 'job',
  index: 0,
  path: '/nowhere/chunk-0.mp3',
  durationS: 1,
  language: null,
  prompt: null,
  model: 'whisper-1',
  signal: new AbortController().signal,
};

/** A loader that counts its calls and hands out a scripted provider, or fails while `failures` lasts. */
function countingLoader(failures = 0) {
  const seen: AbortSignal[] = [];
  const provider: TranscriptionProvider = {
    name: 'openai',
    models: ['whisper-1'],
    transcribe: async () => RESULT,
    check: async (signal) => {
      if (signal) seen.push(signal);
      return { status: 'ok', detail: 'fine' };
    },
  };
  const loader = {
    calls: 0,
    seen,
    load: async (): Promise<TranscriptionProvider> => {
      loader.calls++;
      await Promise.resolve();
      if (loader.calls <= failures) throw new Error('module not readable');
      return provider;
    },
  };
  return loader;
}

describe('lazyProvider', () => {
  it('does not load the engine until the first call, and says its name and models without loading it', () => {
    const loader = countingLoader();
    const p = lazyProvider('openai', ['whisper-1', 'gpt-4o-transcribe'], loader.load);
    expect(p.name).toBe('openai');
    expect(p.models).toEqual(['whisper-1', 'gpt-4o-transcribe']);
    expect(loader.calls).toBe(0);
  });

  it('loads once for calls made at the same time and later, and passes each call through', async () => {
    const loader = countingLoader();
    const p = lazyProvider('openai', ['whisper-1'], loader.load);
    const signal = new AbortController().signal;
    const answers = await Promise.all([p.transcribe(input), p.check(signal), p.transcribe(input)]);
    expect(answers).toEqual([RESULT, { status: 'ok', detail: 'fine' }, RESULT]);
    expect(await p.transcribe(input)).toEqual(RESULT);
    expect(loader.calls).toBe(1);
    expect(loader.seen).toEqual([signal]);
  });

  it('fails the call whose load failed and loads again on the next call', async () => {
    const loader = countingLoader(1);
    const p = lazyProvider('openai', ['whisper-1'], loader.load);
    await expect(p.check()).rejects.toThrow('module not readable');
    expect(await p.check()).toEqual({ status: 'ok', detail: 'fine' });
    expect(loader.calls).toBe(2);
  });

  it("answers checks with the engine's own light check without loading the engine", async () => {
    const loader = countingLoader();
    const p = lazyProvider('openai', ['whisper-1'], loader.load, async () => ({ status: 'ok', detail: 'light' }));
    expect(await p.check()).toEqual({ status: 'ok', detail: 'light' });
    expect(loader.calls).toBe(0);
  });

  it('prepare() loads the engine in the background once; a failed load is not thrown and is tried again', async () => {
    const loader = countingLoader(1);
    const p = lazyProvider('openai', ['whisper-1'], loader.load);
    p.prepare?.();
    expect(loader.calls).toBe(1);
    await new Promise((r) => setImmediate(r));
    p.prepare?.();
    await new Promise((r) => setImmediate(r));
    expect(loader.calls).toBe(2);
    expect(await p.transcribe(input)).toEqual(RESULT);
    expect(loader.calls).toBe(2);
  });
});
