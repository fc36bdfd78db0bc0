import { describe, expect, it } from 'vitest';
import { MARKER_SILENCE_S, MARKER_TONE_S, nearOrWide, nearThenWide, pastNear } from '../../src/chunker/near-or-wide.ts';

const targets = [
  { near: { fromS: 95, toS: 105 }, wide: { fromS: 40, toS: 160 } },
  { near: { fromS: 395, toS: 405 }, wide: { fromS: 340, toS: 460 } },
];

describe('near-or-wide scan timeline', () => {
  it('plays the near windows, the marker, then the wide windows', () => {
    expect(nearThenWide(targets)).toEqual([
      targets[0]?.near,
      targets[1]?.near,
      { fromS: 0, toS: MARKER_SILENCE_S + MARKER_TONE_S },
      targets[0]?.wide,
      targets[1]?.wide,
    ]);
  });

  it('is past the near windows only once a silence ended after them (the marker ends one there)', () => {
    // The near part is 20 s long; a pause reaching its end may still grow until the marker's tone.
    expect(pastNear([{ start: 3, end: 4 }], targets)).toBe(false);
    expect(pastNear([{ start: 3, end: 20 }], targets)).toBe(false);
    expect(pastNear([{ start: 19.5, end: 20 + MARKER_SILENCE_S }], targets)).toBe(true);
  });

  it('answers each target from its near window, or from its wide one where the near one held nothing', () => {
    const near0 = [{ start: 99, end: 100 }];
    const wide1 = [{ start: 350, end: 351 }];
    expect(nearOrWide([near0, [], [], [], wide1], 2)).toEqual([
      { near: near0, wide: null },
      { near: [], wide: wide1 },
    ]);
  });
});
