import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capChunkBytes } from '../../src/chunker/byte-cap.ts';
import { chooseChunkRecipe } from '../../src/chunker/chunk-recipe.ts';
import { createSlicer } from '../../src/chunker/slicer.ts';
import { planSplits } from '../../src/chunker/cut-points.ts';
import type { SlicedChunk } from '../../src/chunker/types.ts';
import { findModel } from '../../src/transcribe/models.ts';
import { GENERATED_DIR } from '../fixtures/speech.ts';
import { ENGINES } from '../../src/transcribe/providers/index.ts';

const logger = pino({ level: 'silent' });
const slicer = createSlicer({ logger, timeoutS: 600 });
const whisper = findModel('openai', 'whisper-1');
/** 44.1 kHz stereo s16le: 6100 s is 1.076 GB (1.0 GiB). */
const BIG_S = 6100;

let big: string;
let bigBytes: number;
let root: string;

/** The ~1 GB WAV, generated once per machine (gitignored like every generated fixture). */
function bigWav(): string {
  mkdirSync(GENERATED_DIR, { recursive: true });
  const file = path.join(GENERATED_DIR, `tone-${BIG_S}s-cd.wav`);
  if (!existsSync(file)) {
    const tmp = `${file}.partial.wav`;
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=220:sample_rate=44100:duration=${BIG_S}`,
      '-ac',
      '2',
      '-c:a',
      'pcm_s16le',
      tmp,
    ]);
    renameSync(tmp, file);
  }
  return file;
}

beforeAll(async () => {
  big = bigWav();
  bigBytes = statSync(big).size;
  root = await mkdtemp(path.join(os.tmpdir(), 'byte-cap-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Slices (copy path) with a small look-ahead, so a release that never reaches the slicer would hang the test. */
async function sliceAll(outDir: string, cutPoints: number[], maxBytes: number): Promise<SlicedChunk[]> {
  const handle = capChunkBytes(
    slicer.slice({
      input: big,
      demuxer: 'wav',
      outDir,
      cutPoints,
      format: 'wav',
      mode: 'copy',
      lookahead: 2,
      maxDurationS: 6 * 3600,
      expectedDurationS: BIG_S,
    }),
    { maxBytes, logger, timeoutS: 600 },
  );
  const got: SlicedChunk[] = [];
  for await (const c of handle.chunks) {
    expect((await stat(c.path)).size).toBe(c.bytes);
    got.push(c);
    await rm(c.path);
    handle.release(c.index);
  }
  expect(await handle.done).toEqual({ count: got.length });
  return got;
}

function expectContiguous(chunks: SlicedChunk[]): void {
  expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
  chunks.forEach((c, i) => {
    if (i > 0) expect(c.startS).toBeCloseTo((chunks[i - 1]?.startS ?? 0) + (chunks[i - 1]?.durationS ?? 0), 3);
  });
  const total = chunks.reduce((s, c) => s + c.durationS, 0);
  expect(Math.abs(total - BIG_S)).toBeLessThan(0.05);
}

describe('a 1 GB WAV for whisper-1', () => {
  it('is planned into copied chunks that are all under 25 MiB', async () => {
    expect(bigBytes).toBeGreaterThan(1e9);
    if (!whisper) throw new Error('whisper-1 is not in the model table');
    const audio = {
      demuxer: 'wav',
      codec: 'pcm_s16le',
      sample_rate: 44_100,
      channels: 2,
      size_bytes: bigBytes,
      duration_s: BIG_S,
    };
    const plan = chooseChunkRecipe({
      intake: ENGINES.openai.chunks,
      model: whisper,
      audio,
      chunkSeconds: 100,
      encodeFormat: 'mp3',
    });
    expect(plan.mode).toBe('copy');
    const out = await mkdtemp(path.join(root, 'planned-'));
    const chunks = await sliceAll(
      out,
      planSplits({ durationS: BIG_S, targetS: plan.targetS, maxChunkS: plan.maxChunkS }),
      whisper.maxBytes,
    );
    expect(chunks.length).toBeGreaterThan(50);
    for (const c of chunks) expect(c.bytes).toBeLessThan(25 * 1024 * 1024);
    expectContiguous(chunks);
    expect(await readdir(out)).toEqual([]);
  });

  it('splits again every chunk a plan left over the cap, so none is sent to fail', async () => {
    if (!whisper) throw new Error('whisper-1 is not in the model table');
    // 600 s chunks of CD audio are ~106 MB each: four times the cap.
    const cuts = planSplits({ durationS: BIG_S, targetS: 600 });
    const out = await mkdtemp(path.join(root, 'oversized-'));
    const chunks = await sliceAll(out, cuts, whisper.maxBytes);
    expect(chunks.length).toBeGreaterThanOrEqual((cuts.length + 1) * 4);
    for (const c of chunks) expect(c.bytes).toBeLessThan(25 * 1024 * 1024);
    expectContiguous(chunks);
    expect(await readdir(out)).toEqual([]);
  });
});
