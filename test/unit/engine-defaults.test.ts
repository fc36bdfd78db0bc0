import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig } from '../../src/config.ts';
import { engineDefaults } from '../../src/transcribe/providers/index.ts';

describe('engine defaults', () => {
  it('gives the local engine short chunks and one chunk in flight per core, the openai engine long ones', () => {
    expect(engineDefaults('local', {}, 8)).toEqual({ chunkSeconds: 45, overlapSeconds: 4, concurrency: 8 });
    expect(engineDefaults('openai', {}, 8)).toEqual({ chunkSeconds: 600, overlapSeconds: 1, concurrency: 3 });
  });

  it('lets every setting the operator made override the engine, 0 included', () => {
    expect(engineDefaults('local', { chunkSeconds: 120, overlapSeconds: 0 }, 4)).toEqual({
      chunkSeconds: 120,
      overlapSeconds: 0,
      concurrency: 4,
    });
    expect(engineDefaults('openai', { concurrency: 5 })).toMatchObject({ chunkSeconds: 600, concurrency: 5 });
  });
});

describe('config: the chunking of the configured engine', () => {
  it('applies the local engine defaults when nothing is set, and says they came from the engine', () => {
    const config = loadConfig({});
    expect(config.provider).toBe('local');
    expect(config).toMatchObject({
      chunkSeconds: 45,
      chunkOverlapSeconds: 4,
      concurrency: os.availableParallelism(),
    });
    expect(config.chunking).toEqual({
      engine: 'local',
      set: {},
      fromEngine: ['chunkSeconds', 'overlapSeconds', 'concurrency'],
    });
    // The printed configuration (log line, /health) shows which applied.
    expect(redactConfig(config).chunking).toEqual(config.chunking);
  });

  it('keeps the openai defaults of before for the openai engine', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'k' })).toMatchObject({
      chunkSeconds: 600,
      chunkOverlapSeconds: 1,
      concurrency: 3,
    });
  });

  it('takes CHUNK_SECONDS, CHUNK_OVERLAP_SECONDS and TRANSCRIBE_CONCURRENCY when set', () => {
    const config = loadConfig({ TRANSCRIBE_PROVIDER: 'local', CHUNK_SECONDS: '120', CHUNK_OVERLAP_SECONDS: '0' });
    expect(config).toMatchObject({ chunkSeconds: 120, chunkOverlapSeconds: 0 });
    expect(config.chunking).toEqual({
      engine: 'local',
      set: { chunkSeconds: 120, overlapSeconds: 0 },
      fromEngine: ['concurrency'],
    });
    expect(loadConfig({ OPENAI_API_KEY: 'k', TRANSCRIBE_CONCURRENCY: '7' }).concurrency).toBe(7);
  });

  it('still refuses a value out of range', () => {
    expect(() => loadConfig({ CHUNK_SECONDS: '0' })).toThrow(/CHUNK_SECONDS/);
    expect(() => loadConfig({ TRANSCRIBE_CONCURRENCY: '65' })).toThrow(/TRANSCRIBE_CONCURRENCY/);
    expect(() => loadConfig({ CHUNK_OVERLAP_SECONDS: '-1' })).toThrow(/CHUNK_OVERLAP_SECONDS/);
  });
});
