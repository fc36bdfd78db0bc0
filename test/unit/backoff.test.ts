import { describe, expect, it } from 'vitest';
import { computeBackoffMs, sleep } from '../../src/transcribe/backoff.ts';
import { manualClock } from '../support/manual-clock.ts';

describe('backoff', () => {
  describe('computeBackoffMs', () => {
    it('grows the ceiling exponentially with the attempt when random is at its top', () => {
      const top = () => 0.999999;
      const delays = [1, 2, 3, 4].map((attempt) =>
        computeBackoffMs({ attempt, baseMs: 100, capMs: 10_000, random: top }),
      );
      expect(delays).toEqual([99, 199, 399, 799]);
    });

    it('applies full jitter: the delay is random() times the ceiling', () => {
      expect(computeBackoffMs({ attempt: 3, baseMs: 100, capMs: 10_000, random: () => 0.5 })).toBe(200);
      expect(computeBackoffMs({ attempt: 3, baseMs: 100, capMs: 10_000, random: () => 0 })).toBe(0);
    });

    it('caps the ceiling at capMs', () => {
      expect(computeBackoffMs({ attempt: 20, baseMs: 100, capMs: 5000, random: () => 0.5 })).toBe(2500);
      expect(computeBackoffMs({ attempt: 5000, baseMs: 100, capMs: 5000, random: () => 0.5 })).toBe(2500);
    });

    it('never goes below the server hint, even above the cap', () => {
      expect(computeBackoffMs({ attempt: 1, baseMs: 100, capMs: 1000, floorMs: 30_000, random: () => 0.9 })).toBe(
        30_000,
      );
      expect(computeBackoffMs({ attempt: 4, baseMs: 1000, capMs: 60_000, floorMs: 500, random: () => 0.5 })).toBe(4000);
    });

    it('rejects a bad attempt number', () => {
      expect(() => computeBackoffMs({ attempt: 0, baseMs: 1, capMs: 1 })).toThrow(TypeError);
    });
  });

  describe('sleep', () => {
    it('resolves when the timer fires', async () => {
      const clock = manualClock();
      let done = false;
      const p = sleep(1000, undefined, clock).then(() => (done = true));
      await Promise.resolve();
      expect(done).toBe(false);
      clock.fire();
      await p;
      expect(done).toBe(true);
    });

    it('rejects with the abort reason at once and clears its timer', async () => {
      const clock = manualClock();
      const ac = new AbortController();
      const p = sleep(60_000, ac.signal, clock);
      ac.abort(new Error('stop'));
      await expect(p).rejects.toThrow('stop');
      expect(clock.pending()).toBe(0);
    });

    it.each([-1, -300, 0, 200])(
      'resolves only once the clock says the time is over, with timers skewed by %i ms',
      async (skewMs) => {
        const clock = manualClock(0, { skewMs });
        let done = false;
        const p = sleep(1000, undefined, clock).then(() => (done = true));
        clock.advance(999);
        await Promise.resolve();
        expect(done).toBe(false);
        clock.advance(1 + Math.max(0, skewMs));
        await p;
        expect(done).toBe(true);
        expect(clock.pending()).toBe(0);
      },
    );

    it('rejects with the abort reason while re-armed after an early firing, and leaves no timer', async () => {
      const clock = manualClock(0, { skewMs: -10 });
      const ac = new AbortController();
      const p = sleep(100, ac.signal, clock);
      clock.advance(95);
      expect(clock.pending()).toBe(1);
      ac.abort(new Error('stop'));
      await expect(p).rejects.toThrow('stop');
      expect(clock.pending()).toBe(0);
    });

    it('rejects when the signal is already aborted', async () => {
      await expect(sleep(10, AbortSignal.abort(new Error('early')), manualClock())).rejects.toThrow('early');
    });
  });
});
