import { describe, expect, it } from 'vitest';
import {
  chunkSound,
  frontEndFor,
  NOISY_RANGE_DB,
  PAUSE_S,
  type ChunkSound,
} from '../../src/transcribe/providers/local/chunk-sound.ts';

const RATE = 16_000;

/** A pseudo-random generator with a fixed seed, in [-0.5, 0.5). */
function noiseOf(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5;
}

/**
 * Syllables without a pause: harmonics of 140 Hz under a 4 Hz envelope that dips ~46 dB between syllables (as
 * speech's level does between phones), a faint hiss throughout, `noise` as much hiss again on top; `silent` spans
 * (seconds) are digital silence.
 */
function speechLike(seconds: number, noise = 0, silent: ReadonlyArray<readonly [number, number]> = []): Int16Array {
  const rand = noiseOf(11);
  return Int16Array.from({ length: seconds * RATE }, (_, i) => {
    const t = i / RATE;
    if (silent.some(([a, b]) => t >= a && t < b)) return 0;
    // Harmonic k of 140 Hz at 4000 / k.
    let v = 0;
    for (let k = 1; k <= 12; k++) v += (4000 / k) * Math.sin(2 * Math.PI * 140 * k * t);
    const envelope = 0.005 + 0.995 * Math.sin(Math.PI * 4 * t) ** 2;
    return Math.round(v * envelope + rand() * (10 + noise));
  });
}

describe('chunkSound', () => {
  it('finds no pause and a wide range in clean speech without pauses', () => {
    const s = chunkSound(speechLike(6)) as ChunkSound;
    expect(s.longestQuietS).toBeLessThan(PAUSE_S);
    expect(s.startsQuiet).toBe(false);
    expect(s.rangeDb).toBeGreaterThanOrEqual(NOISY_RANGE_DB);
  });

  it('finds the range narrowed by noise, the same speech under hiss (~17 dB: as clip A under pink noise at 13 dB SNR, 14.5-15.8)', () => {
    const s = chunkSound(speechLike(6, 400)) as ChunkSound;
    expect(s.longestQuietS).toBeLessThan(PAUSE_S);
    expect(s.rangeDb).toBeLessThan(NOISY_RANGE_DB);
  });

  it('finds a pause, and a chunk that starts in one', () => {
    const pause = chunkSound(speechLike(6, 0, [[2, 2.8]])) as ChunkSound;
    expect(pause.longestQuietS).toBeGreaterThanOrEqual(PAUSE_S);
    expect(pause.startsQuiet).toBe(false);
    const cutInPause = chunkSound(speechLike(6, 0, [[0, 0.2]])) as ChunkSound;
    expect(cutInPause.longestQuietS).toBeLessThan(PAUSE_S);
    expect(cutInPause.startsQuiet).toBe(true);
  });

  it('is null for less than one frame', () => {
    expect(chunkSound(new Int16Array(100))).toBeNull();
  });
});

describe('frontEndFor', () => {
  // Figures chunkSound gave on 6 s chunks with 4 s of overlap (bench/seam-yardstick.ts cuts, docs/performance.md#seams):
  // the lowest of clean speech, the highest under pink noise at 25 dB SNR.
  const clean = { rangeDb: 37.2, longestQuietS: 0.26, startsQuiet: false };
  const noisy = { rangeDb: 27.4, longestQuietS: 0.26, startsQuiet: false };

  it('turns noise subtraction off in clean speech cut mid-speech', () => {
    expect(frontEndFor(clean)).toBe('noise-off');
    expect(frontEndFor({ ...clean, rangeDb: 42.6 })).toBe('noise-off');
  });

  it('keeps it in noisy speech cut mid-speech', () => {
    expect(frontEndFor(noisy)).toBe('shipped');
    // 20 and 13 dB SNR.
    expect(frontEndFor({ ...noisy, rangeDb: 22.6 })).toBe('shipped');
    expect(frontEndFor({ ...noisy, rangeDb: 14.5 })).toBe('shipped');
  });

  it('keeps what shipped for speech with pauses, a chunk cut in a pause, and no figures', () => {
    // speech.wav's chunks: 1.5 s of digital silence between clips.
    expect(frontEndFor({ rangeDb: 172, longestQuietS: 1.47, startsQuiet: false })).toBe('shipped');
    expect(frontEndFor({ ...clean, startsQuiet: true })).toBe('shipped');
    expect(frontEndFor({ ...noisy, longestQuietS: PAUSE_S })).toBe('shipped');
    expect(frontEndFor(null)).toBe('shipped');
  });
});
