import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createChunkSource, type PlannedSubject } from '../../src/chunker/chunk-source.ts';
import { engineDefaults, ENGINES, type ProviderName } from '../../src/transcribe/providers/index.ts';
import { resolveModel } from '../../src/transcribe/models.ts';
import { createCostEstimator } from '../../src/validate/cost-estimator.ts';

const logger = pino({ level: 'silent' });
const HOURS_2 = 7200;

/** The chunk source and the estimator of one engine at its own defaults (600 s and 1 s for openai), as admission has them. */
function admissionOf(engine: ProviderName) {
  const own = engineDefaults(engine, {}, 2);
  const chunks = createChunkSource(
    {
      chunkSeconds: own.chunkSeconds,
      chunkOverlapSeconds: own.overlapSeconds,
      maxDurationS: 36_000,
      ffmpegTimeoutS: 60,
    },
    { logger, reader: { intake: ENGINES[engine].chunks, caps: (model) => resolveModel(engine, model) } },
  );
  const estimator = createCostEstimator({ logger, provider: engine });
  return (subject: PlannedSubject) => {
    const { chunks: plannedChunks, overlapS } = chunks.planned(subject);
    const { billedS, estimate } = estimator.estimate({
      durationS: subject.audio.duration_s,
      model: subject.model,
      plannedChunks,
      overlapS,
    });
    return { plannedChunks, overlapS, billedS, costUsd: estimate.cost_usd };
  };
}

const mp3: PlannedSubject = {
  model: 'whisper-1',
  // 2 h of 128 kb/s stereo: copied as it is (a 600 s chunk is 9.6 MB, under whisper-1's 25 MiB).
  audio: {
    demuxer: 'mp3',
    codec: 'mp3',
    sample_rate: 44_100,
    channels: 2,
    size_bytes: 115_200_000,
    duration_s: HOURS_2,
  },
};
const wav: PlannedSubject = {
  model: 'whisper-1',
  // 2 h of 16 kHz mono PCM: 600 s chunks of 19.2 MB, copied.
  audio: {
    demuxer: 'wav',
    codec: 'pcm_s16le',
    sample_rate: 16_000,
    channels: 1,
    size_bytes: 230_400_044,
    duration_s: HOURS_2,
  },
};

describe('the estimate bills the overlap at every planned cut', () => {
  it('2 h of 16 kHz WAV for whisper-1: 12 chunks of 600 s, each after the first 1 s longer', () => {
    expect(admissionOf('openai')(wav)).toEqual({
      plannedChunks: 12,
      overlapS: 1,
      billedS: 7211,
      // 7211 s at $0.006 a minute, not the $0.72 of the duration alone.
      costUsd: 0.7211,
    });
  });

  it('2 h of 44.1 kHz mp3: the overlap as the whole frames a copied chunk carries (38 x 1152 samples)', () => {
    const overlapS = Math.round(((38 * 1152) / 44_100) * 1e6) / 1e6;
    expect(overlapS).toBe(0.992653);
    expect(admissionOf('openai')(mp3)).toEqual({
      plannedChunks: 12,
      overlapS,
      billedS: HOURS_2 + 11 * overlapS,
      costUsd: 0.721092,
    });
  });

  it('one chunk repeats nothing', () => {
    const short = { ...wav, audio: { ...wav.audio, duration_s: 500, size_bytes: 16_000_044 } };
    expect(admissionOf('openai')(short)).toMatchObject({ plannedChunks: 1, billedS: 500, costUsd: 0.05 });
  });

  it('a free engine stays 0, whatever it repeats', () => {
    const local = admissionOf('local')({ ...wav, model: 'pocketsphinx-en-us' });
    expect(local.overlapS).toBe(4);
    expect(local.plannedChunks).toBe(160);
    expect(local.billedS).toBe(HOURS_2 + 159 * 4);
    expect(local.costUsd).toBe(0);
  });
});
