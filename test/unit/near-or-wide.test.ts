import { describe, expect, it } from 'vitest';
import { MARKER_SILENCE_S, MARKER_TONE_S, nearOrWide, nearThenWide, pastNear } from '../../src/chunker/near-or-wide.ts';

const targets = [
  { near: { fromS: 95, toS: 105 }, wide: { fromS: 40, toS: 160 } },
  { near: { fromS: 395, toS: 405 }, wide: { fromS: 340, toS: 460 } },
];

describe('near-or-wide scan timeline', () => {
  it('plays the near windows, the marker, then what is left of each wide window around its near one', () => {
    const plan = nearThenWide(targets, 0.5);
    const pieces = [
      { fromS: 40, toS: 95.5 },
      { fromS: 104.5, toS: 160 },
      { fromS: 340, toS: 395.5 },
      { fromS: 404.5, toS: 460 },
    ];
    expect(plan.inputs).toEqual([targets[0]?.near, targets[1]?.near, ...pieces]);
    expect(plan.played).toEqual([
      targets[0]?.near,
      targets[1]?.near,
      { fromS: 0, toS: MARKER_SILENCE_S + MARKER_TONE_S },
      ...pieces,
    ]);
  });

  it("answers a target's wide window from its pieces, in order", () => {
    const plan = nearThenWide(targets, 0.5);
    const left = [{ start: 50, end: 51 }];
    const right = [{ start: 150, end: 151 }];
    expect(plan.answer([[], [{ start: 400, end: 401 }], [], left, right, [], []])).toEqual([
      { near: [], wide: [...left, ...right] },
      { near: [{ start: 400, end: 401 }], wide: null },
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
    expect(nearOrWide([near0, []], [[], wide1])).toEqual([
      { near: near0, wide: null },
      { near: [], wide: wide1 },
    ]);
  });
});
