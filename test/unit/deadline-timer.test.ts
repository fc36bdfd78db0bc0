import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/transcribe/backoff.ts';
import { atDeadline } from '../../src/transcribe/deadline-timer.ts';
import { manualClock } from '../support/manual-clock.ts';

describe('atDeadline', () => {
  it.each([0, -1, -40, 1, 300])(
    'runs once, at the first firing on or after the due time, with timers skewed by %i ms',
    (skewMs) => {
      const clock = manualClock(1_000, { skewMs });
      const ranAt: number[] = [];
      atDeadline(clock, 1_400, () => ranAt.push(clock.now()));
      clock.advance(399);
      expect(ranAt).toEqual([]);
      clock.advance(1 + Math.max(0, skewMs));
      expect(ranAt).toEqual([1_400 + Math.max(0, skewMs)]);
      clock.advance(10_000);
      expect(ranAt).toHaveLength(1);
      expect(clock.pending()).toBe(0);
    },
  );

  it('never runs synchronously, even when already due', () => {
    const clock = manualClock(1_000);
    let ran = false;
    atDeadline(clock, 500, () => (ran = true));
    expect(ran).toBe(false);
    clock.advance(0);
    expect(ran).toBe(true);
  });

  it('does not run after cancel, also when cancelled between an early firing and the due time', () => {
    const clock = manualClock(0, { skewMs: -5 });
    let ran = false;
    const timer = atDeadline(clock, 100, () => (ran = true));
    clock.advance(96);
    expect(clock.pending()).toBe(1);
    timer.cancel();
    timer.cancel();
    clock.advance(1_000);
    expect(ran).toBe(false);
    expect(clock.pending()).toBe(0);
  });

  it('waits longer than one Node timer can in steps instead of letting the delay be clamped to 1 ms', () => {
    const delays: number[] = [];
    let t = 0;
    const queue: Array<() => void> = [];
    const clock: Clock = {
      now: () => t,
      setTimeout: (fn, ms) => {
        delays.push(ms);
        t += ms;
        queue.push(fn);
        return queue.length;
      },
      clearTimeout: () => undefined,
    };
    let ran = false;
    atDeadline(clock, 2 ** 32, () => (ran = true));
    while (!ran && queue.length > 0 && delays.length < 10) queue.shift()?.();
    expect(ran).toBe(true);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it('refuses a due time that is not a number', () => {
    expect(() => atDeadline(manualClock(), Number.NaN, () => undefined)).toThrow(TypeError);
  });
});
