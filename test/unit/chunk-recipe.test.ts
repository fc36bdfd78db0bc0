import { describe, expect, it } from 'vitest';
import { chooseChunkRecipe, COPY_BYTE_MARGIN, type ChunkRecipeInput } from '../../src/chunker/chunk-recipe.ts';
import { maxChunkSecondsForBytes } from '../../src/chunker/chunk-format.ts';
import { ENGINES } from '../../src/transcribe/providers/index.ts';

const MiB = 1024 * 1024;
const whisper = { maxBytes: 25 * MiB, maxSeconds: Infinity };
const gpt4o = { maxBytes: 25 * MiB, maxSeconds: 1400 };
const local = { maxBytes: Infinity, maxSeconds: Infinity };

/** 20 min of 128 kb/s mp3. */
const mp3 = {
  demuxer: 'mp3',
  codec: 'mp3',
  sample_rate: 44_100,
  channels: 2,
  size_bytes: 19_200_000,
  duration_s: 1200,
};
/** 20 min of 32 kb/s opus in ogg. */
const opus = {
  demuxer: 'ogg',
  codec: 'opus',
  sample_rate: 48_000,
  channels: 1,
  size_bytes: 4_800_000,
  duration_s: 1200,
};
/** 1.5 s as whole frames of a 44.1 kHz mp3: 57 x 1152 samples. */
const MP3_LEAD_S = Math.round(((57 * 1152) / 44_100) * 1e6) / 1e6;
const wav16kMono = {
  demuxer: 'wav',
  codec: 'pcm_s16le',
  sample_rate: 16_000,
  channels: 1,
  size_bytes: 32_000 * 600 + 44,
  duration_s: 600,
};
const wavCd = {
  demuxer: 'wav',
  codec: 'pcm_s16le',
  sample_rate: 44_100,
  channels: 2,
  size_bytes: 176_400 * 600 + 44,
  duration_s: 600,
};

function input(over: Partial<ChunkRecipeInput>): ChunkRecipeInput {
  return { intake: ENGINES.openai.chunks, model: whisper, audio: mp3, chunkSeconds: 600, encodeFormat: 'mp3', ...over };
}

describe('chooseChunkRecipe', () => {
  it('copies an mp3 for openai when a chunk fits the byte cap, with the cap from the file bitrate', () => {
    const p = chooseChunkRecipe(input({}));
    expect(p).toMatchObject({ mode: 'copy', format: 'mp3', targetS: 600 });
    // 16 000 B/s: 25 MiB x margin / 16 000 B/s.
    expect(p.bytesPerS).toBe(16_000);
    expect(p.maxChunkS).toBe(Math.floor((25 * MiB * COPY_BYTE_MARGIN) / 16_000));
  });

  it('re-encodes when a planned chunk of the source would not fit the byte cap', () => {
    // 176 400 B/s: 25 MiB holds about 148 s, so a 600 s chunk cannot be copied.
    const p = chooseChunkRecipe(input({ audio: wavCd, encodeFormat: 'mp3' }));
    expect(p.mode).toBe('encode');
    expect(p.format).toBe('mp3');
    expect(p.maxChunkS).toBe(maxChunkSecondsForBytes('mp3', 25 * MiB));
    expect(p.reason).toMatch(/exceed/);
  });

  it('copies the same CD-quality wav when the chunks are short enough', () => {
    const p = chooseChunkRecipe(input({ audio: wavCd, chunkSeconds: 60 }));
    expect(p).toMatchObject({ mode: 'copy', format: 'wav', targetS: 60 });
    expect(p.maxChunkS * p.bytesPerS).toBeLessThanOrEqual(25 * MiB * COPY_BYTE_MARGIN);
  });

  it('re-encodes codecs or containers the provider does not take as they are', () => {
    const aac = { ...mp3, demuxer: 'mov', codec: 'aac' };
    const mp3InMkv = { ...mp3, demuxer: 'matroska' };
    const floatWav = { ...wavCd, codec: 'pcm_f32le' };
    for (const audio of [aac, mp3InMkv, floatWav]) expect(chooseChunkRecipe(input({ audio })).mode).toBe('encode');
  });

  it('caps the target and the chunk length at the model seconds limit', () => {
    // 64 kb/s: 25 MiB would hold 2621 s, more than the model takes.
    const p = chooseChunkRecipe(input({ model: gpt4o, chunkSeconds: 3600, audio: { ...mp3, size_bytes: 9_600_000 } }));
    expect(p).toMatchObject({ mode: 'copy', targetS: 1400, maxChunkS: 1400 });
    // 128 kb/s: 1310 s fit the byte cap, fewer than the 1400 s target, so the source is re-encoded instead.
    expect(chooseChunkRecipe(input({ model: gpt4o, chunkSeconds: 3600 })).mode).toBe('encode');
    const e = chooseChunkRecipe(
      input({ model: gpt4o, chunkSeconds: 3600, audio: { ...mp3, codec: 'aac', demuxer: 'mov' } }),
    );
    expect(e).toMatchObject({ mode: 'encode', targetS: 1400, maxChunkS: 1400 });
  });

  it('gives the local engine 16 kHz mono PCM WAV: copied only when the upload is exactly that', () => {
    expect(
      chooseChunkRecipe(input({ intake: ENGINES.local.chunks, model: local, audio: wav16kMono, encodeFormat: 'wav' })),
    ).toMatchObject({ mode: 'copy', format: 'wav', maxChunkS: Infinity, targetS: 600 });
    for (const audio of [mp3, wavCd, { ...wav16kMono, channels: 2 }, { ...wav16kMono, sample_rate: 22_050 }]) {
      expect(
        chooseChunkRecipe(input({ intake: ENGINES.local.chunks, model: local, audio, encodeFormat: 'wav' })),
      ).toMatchObject({ mode: 'encode', format: 'wav', maxChunkS: Infinity });
    }
  });

  it('never copies a file whose duration is unknown (no bitrate to size chunks by)', () => {
    expect(chooseChunkRecipe(input({ audio: { ...mp3, duration_s: 0 } })).mode).toBe('encode');
  });

  it('carries no overlap unless one is asked for', () => {
    expect(chooseChunkRecipe(input({})).overlapS).toBe(0);
    expect(chooseChunkRecipe(input({ overlapS: 0 })).overlapS).toBe(0);
  });

  it('keeps a WAV path as it is when overlap is asked for, and carries the overlap', () => {
    expect(chooseChunkRecipe(input({ audio: wavCd, chunkSeconds: 60, overlapS: 2 }))).toMatchObject({
      mode: 'copy',
      format: 'wav',
      overlapS: 2,
    });
    expect(
      chooseChunkRecipe(
        input({ intake: ENGINES.local.chunks, model: local, audio: mp3, encodeFormat: 'wav', overlapS: 2 }),
      ),
    ).toMatchObject({ mode: 'encode', format: 'wav', overlapS: 2 });
  });

  it('copies an mp3 with the overlap as whole frames of the chunk before, and an mp3 re-encode the same way', () => {
    const p = chooseChunkRecipe(input({ overlapS: 1.5 }));
    // 1.5 s is 57.4 frames of 1152 samples at 44.1 kHz: 57 of them.
    expect(p).toMatchObject({ mode: 'copy', format: 'mp3', targetS: 600, overlapS: MP3_LEAD_S });
    expect(p.reason).toMatch(/overlap as whole mp3 frames/);
    // A 16 kHz re-encode has 576-sample (36 ms) frames: 42 of them.
    const dense = { ...mp3, size_bytes: 120_000_000 };
    expect(chooseChunkRecipe(input({ audio: dense, overlapS: 1.5 }))).toMatchObject({
      mode: 'encode',
      format: 'mp3',
      overlapS: 1.512,
    });
  });

  it('re-encodes to 16 kHz mono WAV a format that cannot carry overlap, when such a chunk fits the caps', () => {
    // 600 s of 16 kHz mono PCM is 19.2 MB, under whisper-1's 25 MiB.
    const p = chooseChunkRecipe(input({ audio: opus, overlapS: 1.5 }));
    expect(p).toMatchObject({ mode: 'encode', format: 'wav', targetS: 600, overlapS: 1.5 });
    expect(p.reason).toMatch(/overlap/);
  });

  it('keeps the cheaper path without overlap when a WAV chunk of the planned length would not fit, and says why', () => {
    // 1200 s of WAV is 38.4 MB: over the cap, and the model takes ogg chunks of that length.
    const p = chooseChunkRecipe(
      input({ audio: { ...opus, duration_s: 7200, size_bytes: 28_800_000 }, chunkSeconds: 1200, overlapS: 2 }),
    );
    expect(p).toMatchObject({ mode: 'copy', format: 'ogg', targetS: 1200, overlapS: 0 });
    expect(p.reason).toMatch(/no overlap/);
  });

  it('drops the overlap when every cut is in a silence: the mp3 is copied, a WAV path carries none', () => {
    const p = chooseChunkRecipe(input({ overlapS: 1.5, hardCuts: 0 }));
    expect(p).toMatchObject({ mode: 'copy', format: 'mp3', overlapS: 0 });
    expect(p.reason).toMatch(/no cut falls outside a pause/);
    expect(chooseChunkRecipe(input({ audio: wavCd, chunkSeconds: 60, overlapS: 2, hardCuts: 0 }))).toMatchObject({
      format: 'wav',
      overlapS: 0,
    });
  });

  it('keeps the overlap when a cut missed every silence, or when that is not known', () => {
    expect(chooseChunkRecipe(input({ overlapS: 1.5, hardCuts: 1 }))).toMatchObject({
      mode: 'copy',
      format: 'mp3',
      overlapS: MP3_LEAD_S,
    });
    expect(chooseChunkRecipe(input({ audio: opus, overlapS: 1.5, hardCuts: null }))).toMatchObject({
      mode: 'encode',
      format: 'wav',
      overlapS: 1.5,
    });
  });
});
