import { describe, expect, it } from 'vitest';
import { splitByWindows, windowBatches, WINDOWS_PER_RUN } from '../../src/chunker/silence-detect.ts';
import {
  laneTargetS,
  planCutPoints,
  planSplits,
  planSplitsByWindows,
  plannedChunkCount,
} from '../../src/chunker/cut-points.ts';

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
    const cuts = planSplits({
      durationS: 30,
      targetS: 10,
      maxChunkS: 10.5,
      searchWindowS: 2,
      silences: [{ start: 11, end: 11.4 }],
    });
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

  it('counts the cuts that fell on no silence', () => {
    const silences = [
      { start: 10.4, end: 11 },
      { start: 19, end: 19.2 },
      { start: 29, end: 29.2 },
    ];
    expect(planCutPoints({ durationS: 40, targetS: 10, searchWindowS: 2, silences })).toEqual({
      cuts: [10.7, 19.1, 29.1],
      hardCuts: 0,
    });
    // The second target (20.7 after the first cut) has no silence within 1 s.
    expect(planCutPoints({ durationS: 40, targetS: 10, searchWindowS: 1, silences: silences.slice(0, 1) })).toEqual({
      cuts: [10.7, 20.7, 30.7],
      hardCuts: 2,
    });
    // A tail split in halves is cut wherever the half falls.
    expect(planCutPoints({ durationS: 21, targetS: 10, minTailS: 2, maxChunkS: 10.5 })).toEqual({
      cuts: [10, 15.5],
      hardCuts: 2,
    });
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

/** A scan over fixed silences, recording the windows it was asked for. */
function scanner(silences: Array<{ start: number; end: number }>) {
  const calls: Array<Array<{ fromS: number; toS: number }>> = [];
  const scan = async (windows: ReadonlyArray<{ fromS: number; toS: number }>) => {
    calls.push([...windows]);
    return windows.map((w) => silences.filter((s) => s.end > w.fromS && s.start < w.toS));
  };
  return { scan, calls };
}

describe('planSplitsByWindows', () => {
  it('scans near every target at once, then widens only where nothing was found', async () => {
    const { scan, calls } = scanner([
      { start: 61, end: 62 },
      { start: 108, end: 109 },
    ]);
    const { cuts, hardCuts } = await planSplitsByWindows(
      { durationS: 200, targetS: 60, searchWindowS: 15, nearS: 5 },
      scan,
    );
    expect(calls[0]).toEqual([
      { fromS: 55, toS: 65 },
      { fromS: 115, toS: 125 },
      { fromS: 175, toS: 185 },
    ]);
    // Each whole window with the near one it holds, which held no pause (decoded again only at its edges).
    expect(calls[1]).toEqual([
      { fromS: 105, toS: 135, heard: { fromS: 115, toS: 125 } },
      { fromS: 165, toS: 195, heard: { fromS: 175, toS: 185 } },
    ]);
    expect(calls).toHaveLength(2);
    expect(cuts).toEqual([61.5, 108.5, 180]);
    // 180 found no silence in either scan.
    expect(hardCuts).toBe(1);
  });

  it('keeps chunks within maxChunkS and the tail at least minTailS', async () => {
    // Silences that would make the second chunk 80 s and the tail 5 s.
    const { scan } = scanner([
      { start: 45, end: 46 },
      { start: 125, end: 126 },
      { start: 194, end: 196 },
    ]);
    const { cuts, hardCuts } = await planSplitsByWindows(
      { durationS: 200, targetS: 60, maxChunkS: 70, minTailS: 10, searchWindowS: 15, nearS: 15 },
      scan,
    );
    expect(cuts).toEqual([45.5, 115.5, 180]);
    // The silences near 120 and 200 were out of bounds: those two cuts fall where no silence is.
    expect(hardCuts).toBe(2);
    const bounds = [0, ...cuts, 200];
    for (let i = 1; i < bounds.length; i++) expect((bounds[i] ?? 0) - (bounds[i - 1] ?? 0)).toBeLessThanOrEqual(70);
  });

  it('makes no scan for a file of one chunk', async () => {
    const { scan, calls } = scanner([]);
    expect(await planSplitsByWindows({ durationS: 50, targetS: 60, nearS: 5 }, scan)).toEqual({
      cuts: [],
      hardCuts: 0,
    });
    expect(calls).toHaveLength(0);
  });
});

describe('splitByWindows', () => {
  it('maps silences of the joined windows back to file times and splits them at the joins', () => {
    const windows = [
      { fromS: 100, toS: 110 },
      { fromS: 300, toS: 310 },
    ];
    // One silence inside window 0, one running over the join (9.5 .. 12), one too short after the join.
    const joined = [
      { start: 2, end: 3 },
      { start: 9.5, end: 12 },
    ];
    expect(splitByWindows(joined, windows, 0.3)).toEqual([
      [
        { start: 102, end: 103 },
        { start: 109.5, end: 110 },
      ],
      [{ start: 300, end: 302 }],
    ]);
    expect(splitByWindows([{ start: 9.9, end: 10.1 }], windows, 0.3)).toEqual([[], []]);
  });
});

describe('windowBatches', () => {
  it('keeps every window in one run of at most WINDOWS_PER_RUN, in order', () => {
    expect(windowBatches(0, 2)).toEqual([]);
    expect(windowBatches(5, 1)).toEqual([[0, 5]]);
    expect(windowBatches(WINDOWS_PER_RUN + 1, 1)).toEqual([
      [0, 16],
      [16, 33],
    ]);
  });

  it('splits the windows into at least one run per parallel slot, as even as can be', () => {
    expect(windowBatches(23, 2)).toEqual([
      [0, 11],
      [11, 23],
    ]);
    expect(windowBatches(3, 4)).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
    ]);
    const runs = windowBatches(100, 2);
    expect(runs).toHaveLength(4);
    expect(runs.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i))).toEqual(
      Array.from({ length: 100 }, (_, i) => i),
    );
  });
});

describe('laneTargetS', () => {
  it("evens a short file's chunks out over the pool's lanes", () => {
    // 6.4 min at the local engine's 45 s on 2 cores: 9 chunks (the last 24 s) are 5 rounds; 10 of 38.4 s as many.
    expect(plannedChunkCount(384, 45)).toBe(9);
    expect(laneTargetS(384, 45, 2)).toBeCloseTo(38.4, 9);
    expect(plannedChunkCount(384, laneTargetS(384, 45, 2))).toBe(10);
    // 3 chunks on 2 lanes: 4 of three quarters; 2 chunks on 3 lanes: 3 of two thirds.
    expect(plannedChunkCount(135, laneTargetS(135, 45, 2))).toBe(4);
    expect(plannedChunkCount(90, laneTargetS(90, 45, 3))).toBe(3);
    // Never more than twice the chunks (none under half the aim): 2 chunks on 8 lanes become 4.
    expect(plannedChunkCount(1200, laneTargetS(1200, 600, 8))).toBe(4);
  });

  it('leaves the length alone where the chunks already fill the lanes, for one chunk, and for one lane', () => {
    expect(laneTargetS(7200, 300, 3)).toBe(300);
    expect(laneTargetS(7200, 300, 8)).toBe(300);
    expect(laneTargetS(40, 45, 2)).toBe(45);
    expect(laneTargetS(384, 45, 1)).toBe(45);
    // 25 chunks on 3 lanes: 27 of 266.7 s are 9 rounds as the 25 are, shorter ones: taken.
    expect(plannedChunkCount(7500, laneTargetS(7500, 300, 3))).toBe(27);
  });
});
