import { describe, expect, it } from 'vitest';
import { evenLanes } from '../../src/service/backend-stages.ts';

describe('evenLanes', () => {
  it("evens a short file's chunks over the pool where the chunk length is the engine's, not where it was set", () => {
    const chunking = { engine: 'local' as const, set: {}, fromEngine: [] };
    expect(evenLanes({ concurrency: 4, chunking })).toBe(4);
    expect(evenLanes({ concurrency: 4, chunking: { ...chunking, set: { concurrency: 4 } } })).toBe(4);
    expect(evenLanes({ concurrency: 4, chunking: { ...chunking, set: { chunkSeconds: 6 } } })).toBe(1);
  });
});
