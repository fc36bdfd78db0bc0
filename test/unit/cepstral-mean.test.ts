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
