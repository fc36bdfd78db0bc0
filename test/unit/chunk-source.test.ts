import { describe, expect, it } from 'vitest';
import { chooseChunkRecipe } from '../../src/chunker/chunk-recipe.ts';
import { chunkPlanRecord, createChunkSource, type ChunkSubject } from '../../src/chunker/chunk-source.ts';
import { silentLogger } from '../fixtures/pipeline.ts';
import { ENGINES } from '../../src/transcribe/providers/index.ts';

const MiB = 1024 * 1024;
/** 1.5 s as whole frames of a 44.1 kHz mp3: 57 x 1152 samples. */
const MP3_LEAD_S = Math.round(((57 * 1152) / 44_100) * 1e6) / 1e6;
const config = { chunkSeconds: 600, chunkOverlapSeconds: 1.5, maxDurationS: 36_000, ffmpegTimeoutS: 60 };
const whisper = { maxBytes: 25 * MiB, maxSeconds: Infinity };
const source = createChunkSource(config, {
  logger: silentLogger,
  reader: { intake: ENGINES.openai.chunks, caps: () => whisper },
});
const mp3: ChunkSubject = {
  file: '/nonexistent/upload',
  audio: { demuxer: 'mp3', codec: 'mp3', sample_rate: 44_100, channels: 2, size_bytes: 57_600_000, duration_s: 3600 },
  model: 'whisper-1',
};

describe('chunk plan records', () => {
  it('keep no cap as null, since JSON has no Infinity', () => {
    const local = chooseChunkRecipe({
      intake: ENGINES.local.chunks,
      model: { maxBytes: Infinity, maxSeconds: Infinity },
      audio: mp3.audio,
      chunkSeconds: 600,
      encodeFormat: 'wav',
    });
    expect(JSON.parse(JSON.stringify(chunkPlanRecord(local, 2)))).toEqual({
      mode: 'encode',
      format: 'wav',
      maxBytes: null,
      overlapS: 0,
      hardCuts: 2,
      reason: local.reason,
    });
  });
});

describe('createChunkSource().resume', () => {
  it('keeps a whole stored plan as it is, whatever the config says now', () => {
    const stored = {
      mode: 'copy',
      format: 'mp3',
      maxBytes: 1_000,
      overlapS: 0,
      hardCuts: 3,
      reason: 'planned by the first run',
    } as const;
    expect(source.resume(mp3, stored)).toEqual(stored);
  });

  it('decides a plan stored before the byte cap was kept again from its hard cuts, as those versions did at every start', () => {
    // The mp3 is copied either way; with a hard cut it carries the 1.5 s overlap as 57 whole frames.
    expect(source.resume(mp3, { mode: 'copy', format: 'mp3', overlapS: 0, hardCuts: 0, reason: 'old' })).toMatchObject({
      mode: 'copy',
      format: 'mp3',
      maxBytes: 25 * MiB,
      overlapS: 0,
      hardCuts: 0,
    });
    expect(
      source.resume(mp3, { mode: 'encode', format: 'wav', overlapS: 1.5, hardCuts: 2, reason: 'old' }),
    ).toMatchObject({
      mode: 'copy',
      format: 'mp3',
      overlapS: MP3_LEAD_S,
      hardCuts: 2,
    });
  });

  it('decides the plan of a job sliced before plans were kept as one whose hard cuts are not known', () => {
    expect(source.resume(mp3, null)).toMatchObject({
      mode: 'copy',
      format: 'mp3',
      overlapS: MP3_LEAD_S,
      hardCuts: null,
    });
  });
});
