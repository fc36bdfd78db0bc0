import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createChunkSource, type ChunkSubject } from '../../src/chunker/chunk-source.ts';
import { ENGINES } from '../../src/transcribe/providers/index.ts';
import { silentLogger } from '../fixtures/pipeline.ts';
import { encodeSweep } from '../support/mp3-files.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-chunk-lanes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 135 s of constant-bitrate mp3: cut while it is sliced (a lazy plan), 3 chunks of 45 s. */
const file = path.join(dir, 'a.mp3');
encodeSweep(file, ['-b:a', '64k', '-ar', '16000', '-ac', '1'], 135);
const subject: ChunkSubject = {
  file,
  audio: { demuxer: 'mp3', codec: 'mp3', sample_rate: 16_000, channels: 1, size_bytes: 1_080_000, duration_s: 135 },
  model: 'whisper-1',
};
const config = { chunkSeconds: 45, chunkOverlapSeconds: 1, maxDurationS: 36_000, ffmpegTimeoutS: 60 };
const source = (evenLanes?: number) =>
  createChunkSource(
    { ...config, ...(evenLanes !== undefined && { evenLanes }) },
    {
      logger: silentLogger,
      reader: { intake: ENGINES.openai.chunks, caps: () => ({ maxBytes: Infinity, maxSeconds: Infinity }) },
    },
  );
const planned = async (evenLanes: number | undefined, s: ChunkSubject = subject) =>
  (await source(evenLanes).planChunks(s, new AbortController().signal)).lazy?.plannedChunks;

describe("the chunk source's plan on the pool's lanes", () => {
  it('evens a short file out over the lanes, but not for a job that sends one chunk at a time', async () => {
    expect(await planned(undefined)).toBe(3);
    expect(await planned(1)).toBe(3);
    // 3 chunks on 2 lanes: 4 of 33.75 s.
    expect(await planned(2)).toBe(4);
    expect(await planned(2, { ...subject, sequential: true })).toBe(3);
  });
});

describe("the chunk source's count before its plan", () => {
  it('is the count its plan expects (what the validator shows before there is a plan)', async () => {
    const cases: Array<[number | undefined, ChunkSubject]> = [
      [undefined, subject],
      [2, subject],
      [2, { ...subject, sequential: true }],
    ];
    for (const [lanes, s] of cases) expect(source(lanes).planned(s).chunks).toBe(await planned(lanes, s));
  });
});
