import { describe, expect, it } from 'vitest';
import { windowFor } from '../../src/scale/shared-rate-limiter.ts';
import { busiestWindow } from '../support/request-windows.ts';

/**
 * BullMQ's limiter as its Lua scripts apply it: the first fetch after a window expired starts a new window of
 * durationMs, and at most `max` fetches fall in one window. Fetches are as eager as the limiter allows, with
 * `gapMs` between the earliest possible fetch and the real one (0 = the worst case for the bound).
 */
function fetchTimes(max: number, durationMs: number, count: number, gapMs: number): number[] {
  const times: number[] = [];
  let windowStart = -Infinity;
  let inWindow = 0;
  let t = 0;
  while (times.length < count) {
    if (t >= windowStart + durationMs) {
      windowStart = t;
      inWindow = 0;
    }
    if (inWindow < max) {
      times.push(t);
      inWindow += 1;
      t += gapMs;
    } else {
      t = windowStart + durationMs + gapMs;
    }
  }
  return times;
}

/** The adversarial order: a window whose fetches but the first come just before it closes, then one all at its start. */
function lateFetchTimes(max: number, durationMs: number, windows: number): number[] {
  const times: number[] = [];
  for (let w = 0; w < windows; w++) {
    const start = w * durationMs;
    times.push(start);
    for (let k = 1; k < max; k++) times.push(w % 2 === 0 ? start + durationMs - 1 : start);
  }
  return times;
}

describe('windowFor: the BullMQ fixed window that stands in for the token bucket', () => {
  const cases = [
    { rpm: 20, burst: 20 },
    { rpm: 240, burst: 4 },
    { rpm: 60, burst: 1 },
    { rpm: 600, burst: 7 },
    { rpm: 3500, burst: 50 },
  ];

  it.each(cases)(
    'keeps every interval within rpm x t + burst and the long-run rate at rpm ($rpm rpm, burst $burst)',
    ({ rpm, burst }) => {
      const { max, durationMs } = windowFor(rpm, burst);
      expect(max).toBeGreaterThanOrEqual(1);
      expect(max).toBeLessThanOrEqual(Math.max(1, burst));
      for (const gapMs of [0, 1, 7]) {
        const times = fetchTimes(max, durationMs, 400, gapMs);
        for (const windowMs of [1, durationMs / 2, durationMs, 1.5 * durationMs, 3 * durationMs, 60_000]) {
          expect(busiestWindow(times, windowMs)).toBeLessThanOrEqual(burst + Math.ceil((rpm * windowMs) / 60_000));
        }
        if (gapMs === 0) {
          const late = lateFetchTimes(max, durationMs, 50);
          for (const windowMs of [2, durationMs, 2 * durationMs + 2]) {
            expect(busiestWindow(late, windowMs)).toBeLessThanOrEqual(burst + Math.ceil((rpm * windowMs) / 60_000));
          }
        }
        // Not slower than rpm either (within rounding of the window to whole milliseconds).
        const spanMin = ((times.at(-1) as number) - (times[0] as number)) / 60_000;
        expect(399 / spanMin).toBeGreaterThan(rpm * 0.95);
      }
    },
  );
});
