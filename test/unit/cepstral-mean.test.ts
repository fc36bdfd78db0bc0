import { describe, expect, it } from 'vitest';
import { cepstralMean, EN_US_FRONT_END } from '../../src/transcribe/providers/local/cepstral-mean.ts';
import { withCmnInit } from '../../src/transcribe/providers/local/cmn-init.ts';

/** 16 kHz samples: a few harmonics under a slow envelope, loud enough to fill every mel band (plus a little noise). */
function voiced(seconds: number, gain = 1): Int16Array {
  let seed = 7;
  const noise = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5) * 400;
  return Int16Array.from({ length: seconds * 16_000 }, (_, i) => {
    const t = i / 16_000;
    const tone = [150, 450, 1200, 2500, 5000].reduce(
      (s, f, k) => s + (Math.sin(2 * Math.PI * f * t) * 3000) / (k + 1),
      0,
    );
    return Math.round(gain * (tone * (0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t)) + noise()));
  });
}

describe('cepstralMean (the front end of pocketsphinx en-us)', () => {
  it('gives one value per cepstrum, c0 first', () => {
    const mean = cepstralMean(voiced(2));
    expect(mean).toHaveLength(EN_US_FRONT_END.ceps);
    for (const v of mean ?? []) expect(Number.isFinite(v)).toBe(true);
  });

  it('moves only c0 when the audio is louder: by 5 ln 4 for twice the amplitude (DCT scale sqrt(1/25) on 25 bands)', () => {
    const quiet = cepstralMean(voiced(2)) ?? [];
    const loud = cepstralMean(voiced(2, 2)) ?? [];
    expect((loud[0] ?? 0) - (quiet[0] ?? 0)).toBeCloseTo(5 * Math.log(4), 1);
    for (let i = 1; i < quiet.length; i++) expect(loud[i]).toBeCloseTo(quiet[i] ?? 0, 1);
  });

  it('is null for digital silence and for less than one window of audio', () => {
    expect(cepstralMean(new Int16Array(16_000))).toBeNull();
    expect(cepstralMean(voiced(1).subarray(0, EN_US_FRONT_END.frameSize - 1))).toBeNull();
  });
});

/**
 * 5 s at 16 kHz: a hiss floor throughout and two voiced stretches (harmonics of 140 Hz, then 210 Hz, under a
 * syllable-rate envelope) with a pause between.
 */
function speechAndPauses(): Int16Array {
  let seed = 11;
  const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 - 0.5;
  const harmonics = [
    [1, 4000],
    [2, 2500],
    [3, 1800],
    [5, 900],
    [8, 500],
    [13, 300],
    [21, 150],
  ] as const;
  return Int16Array.from({ length: 5 * 16_000 }, (_, i) => {
    const t = i / 16_000;
    const voiced = (t > 0.6 && t < 2.4) || (t > 3.2 && t < 4.7);
    const f0 = t < 3 ? 140 : 210;
    let v = 0;
    if (voiced) {
      for (const [k, a] of harmonics) v += a * Math.sin(2 * Math.PI * f0 * k * t);
      v *= 0.55 + 0.45 * Math.sin(2 * Math.PI * 4 * t);
    }
    return Math.round(v + rand() * 120);
  });
}

/**
 * What pocketsphinx itself computes from speechAndPauses() written as a 44-byte-header WAV: the mean of the
 * cepstra it logs with `-mfclogdir` (frames with c0 >= 0, as its live normalisation sums them), with the en-us
 * model, pocketsphinx_continuous 0.8+5prealpha+1 (Debian bookworm), recorded 2026-12-05.
 */
const POCKETSPHINX = {
  // Defaults: noise subtraction and voice activity detection on (476 frames of 499 pass).
  default: [47.856, 8.585, 8.298, 6.219, -1.793, -5.636, -3.506, -1.195, -5.336, 0.208, -19.092, -2.125, 40.209],
  // -remove_noise no -remove_silence no (all 499 frames)
  neither: [50.505, 3.626, 6.963, 5.245, -1.572, -5.361, -3.544, -0.997, -5.586, 0.185, -18.72, -2.078, 37.583],
};

describe('cepstralMean against the features pocketsphinx logs', () => {
  // pocketsphinx adds one zero-padded frame at the end of each utterance and restarts its framing after it:
  // a frame or two of 476 differ, ~0.1 at most in the mean.
  const close = (got: number[] | null, want: number[]): void => {
    expect(got).toHaveLength(want.length);
    want.forEach((w, i) => expect(Math.abs((got?.[i] ?? NaN) - w), `c${i}: ${got?.[i]} vs ${w}`).toBeLessThan(0.15));
  };

  it('matches with noise subtraction and voice activity detection off', () => {
    close(cepstralMean(speechAndPauses()), POCKETSPHINX.neither);
  });

  it('differs from what pocketsphinx decodes with its noise subtraction on (C0_BIAS stands in for it)', () => {
    const mean = cepstralMean(speechAndPauses()) ?? [];
    expect((mean[0] ?? 0) - (POCKETSPHINX.default[0] as number)).toBeGreaterThan(1);
  });
});

describe('withCmnInit', () => {
  const params = '-lowerf 130\n-cmn batch\n-cmninit 41.00,-5.29,-0.12\n-varnorm no\n';

  it("replaces the model's -cmninit line and keeps every other", () => {
    expect(withCmnInit(params, [56.704, -3.1, 0])).toBe(
      '-lowerf 130\n-cmn batch\n-cmninit 56.70,-3.10,0.00\n-varnorm no\n',
    );
  });

  it('adds the line to a feat.params that has none', () => {
    expect(withCmnInit('-lowerf 130', [1, 2])).toBe('-lowerf 130\n-cmninit 1.00,2.00\n');
  });
});
