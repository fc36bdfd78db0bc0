import { describe, expect, it } from 'vitest';
import { planSplits, plannedChunkCount } from '../../src/chunker/split-planner.ts';

/** Chunk lengths implied by a plan. */
function lengths(durationS: number, cuts: number[]): number[] {
  const bounds = [0, ...cuts, durationS];
  return bounds.slice(1).map((b, i) => b - (bounds[i] ?? 0));
}

describe('planSplits', () => {
  it('cuts at exact multiples of the target when there are no silences', () => {
    expect(planSplits({ durationS: 30, targetS: 10 })).toEqual([10, 20]);
    expect(planSplits({ durationS: 3600, targetS: 600 })).toEqual([600, 1200, 1800, 2400, 3000]);
  });

  it('returns no cut when the file is not longer than one chunk', () => {
    expect(planSplits({ durationS: 10, targetS: 10 })).toEqual([]);
    expect(planSplits({ durationS: 4, targetS: 10 })).toEqual([]);
    expect(planSplits({ durationS: 0, targetS: 10 })).toEqual([]);
  });

  it('merges a tail shorter than minTailS into the chunk before', () => {
    expect(planSplits({ durationS: 31, targetS: 10, minTailS: 2 })).toEqual([10, 20]);
    expect(planSplits({ durationS: 1205, targetS: 600 })).toEqual([600]);
  });

  it('keeps a tail that is at least minTailS long', () => {
    expect(planSplits({ durationS: 33, targetS: 10, minTailS: 2 })).toEqual([10, 20, 30]);
  });

  it('picks the silence midpoint nearest each target inside the window', () => {
    const silences = [
      { start: 8, end: 9 }, // midpoint 8.5, 1.5 s early
      { start: 10.4, end: 11 }, // midpoint 10.7, nearest to 10
      { start: 19, end: 19.2 }, // midpoint 19.1, nearest to 20.7
    ];
    const cuts = planSplits({ durationS: 40, targetS: 10, searchWindowS: 2, silences });
    expect(cuts[0]).toBe(10.7);
    expect(cuts[1]).toBe(19.1); // the next target is 20.7: 19.1 is 1.6 away
    expect(cuts[2]).toBe(29.1);
  });

  it('ignores silences outside the search window', () => {
    const cuts = planSplits({ durationS: 30, targetS: 10, searchWindowS: 1, silences: [{ start: 12, end: 13 }] });
    expect(cuts).toEqual([10, 20]);
  });

  it('never chooses a silence that would make a chunk longer than maxChunkS', () => {
    const cuts = planSplits({ durationS: 30, targetS: 10, maxChunkS: 10.5, searchWindowS: 2, silences: [{ start: 11, end: 11.4 }] });
    expect(cuts[0]).toBe(10);
  });

  it('splits the merged tail in halves when merging would exceed maxChunkS', () => {
    const cuts = planSplits({ durationS: 21, targetS: 10, minTailS: 2, maxChunkS: 10.5 });
    expect(cuts).toEqual([10, 15.5]);
    expect(Math.max(...lengths(21, cuts))).toBeLessThanOrEqual(10.5);
  });

  it('returns strictly increasing cuts inside (0, duration) for any silence layout', () => {
    const silences = Array.from({ length: 400 }, (_, i) => ({ start: i * 9.7, end: i * 9.7 + 0.4 }));
    const durationS = 3890.25;
    const cuts = planSplits({ durationS, targetS: 60, silences });
    expect(cuts.length).toBeGreaterThan(50);
    cuts.forEach((c, i) => {
      expect(c).toBeGreaterThan(i === 0 ? 0 : (cuts[i - 1] ?? 0));
      expect(c).toBeLessThan(durationS);
    });
    const lens = lengths(durationS, cuts);
    const last = lens.pop() ?? 0;
    for (const len of lens) {
      expect(len).toBeGreaterThanOrEqual(60 - 6);
      expect(len).toBeLessThanOrEqual(60 + 6);
    }
    expect(last).toBeGreaterThanOrEqual(15); // the default minTailS
    expect(last).toBeLessThan(60 + 6 + 15);
  });

  it('throws a TypeError quoting the bad value when targetS is not positive', () => {
    expect(() => planSplits({ durationS: 10, targetS: 0 })).toThrow(/targetS.*`0`/);
    expect(() => planSplits({ durationS: Number.NaN, targetS: 10 })).toThrow(TypeError);
  });
});

describe('plannedChunkCount', () => {
  it('counts the chunks planSplits makes', () => {
    expect(plannedChunkCount(30, 10)).toBe(3);
    expect(plannedChunkCount(31, 10)).toBe(3);
    expect(plannedChunkCount(36, 10)).toBe(4);
    expect(plannedChunkCount(5, 10)).toBe(1);
    expect(plannedChunkCount(0, 10)).toBe(0);
    expect(plannedChunkCount(6 * 3600, 600)).toBe(36);
  });
});
