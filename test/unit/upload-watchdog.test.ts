import { describe, expect, it } from 'vitest';
import { watchUpload, type SlowUpload, type UploadPace } from '../../src/http/routes/upload-watchdog.ts';
import type { Clock } from '../../src/transcribe/backoff.ts';
import { manualClock, type ManualClock } from '../support/manual-clock.ts';

const PACE: UploadPace = { minBytesPerS: 16 * 1024, windowMs: 30_000, maxGapMs: 30_000 };

function watch(clock: Clock, pace: UploadPace = PACE) {
  const slow: SlowUpload[] = [];
  const dog = watchUpload({ clock, pace, onSlow: (s) => slow.push(s) });
  return { dog, slow };
}

/** Sends `bytes` every `everyMs` until `untilMs` on the manual clock. */
function drip(
  clock: ManualClock,
  dog: { received(n: number): void },
  bytes: number,
  everyMs: number,
  untilMs: number,
): void {
  while (clock.now() + everyMs <= untilMs) {
    clock.advance(everyMs);
    dog.received(bytes);
  }
}

describe('upload watchdog', () => {
  it('refuses a trickle below the minimum rate at the end of the first window, not before', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock);
    drip(clock, dog, 1, 5_000, 25_000);
    expect(slow).toEqual([]);
    drip(clock, dog, 1, 5_000, 30_000);
    expect(slow).toEqual([{ reason: 'too_slow', bytes_per_s: 0, window_ms: 30_000 }]);
    expect(clock.pending()).toBe(0);
  });

  it('refuses an upload that stops sending once the gap passes the limit', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock, { ...PACE, minBytesPerS: 0 });
    dog.received(1_000_000);
    clock.advance(29_999);
    expect(slow).toEqual([]);
    clock.advance(1);
    expect(slow).toEqual([{ reason: 'stalled', idle_ms: 30_000 }]);
    expect(clock.pending()).toBe(0);
  });

  it('lets a fast upload run through many windows, and stop clears the timer', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock);
    drip(clock, dog, 64 * 1024, 1_000, 600_000);
    expect(slow).toEqual([]);
    expect(clock.pending()).toBe(1);
    dog.stop();
    expect(clock.pending()).toBe(0);
    dog.received(1);
    clock.advance(3_600_000);
    expect(slow).toEqual([]);
  });

  it('judges each window on its own: a fast start does not buy a later stall below the rate', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock, { ...PACE, maxGapMs: 0 });
    drip(clock, dog, 1024 * 1024, 1_000, 29_000);
    drip(clock, dog, 1, 1_000, 59_000);
    expect(slow).toEqual([]);
    clock.advance(1_000);
    // The second window, 30 s to 60 s, had one byte a second.
    expect(slow).toEqual([{ reason: 'too_slow', bytes_per_s: 1, window_ms: 30_000 }]);
  });

  it('does not refuse early when its timer fires early, and re-arms itself', () => {
    const inner = manualClock();
    // Every timer fires after a tenth of its delay.
    const early: Clock = { ...inner, setTimeout: (fn, ms) => inner.setTimeout(fn, ms / 10) };
    const { dog, slow } = watch(early, { ...PACE, minBytesPerS: 0 });
    dog.received(1);
    for (let t = 0; t < 29_000; t += 1_000) inner.advance(1_000);
    expect(slow).toEqual([]);
    expect(inner.pending()).toBe(1);
    inner.advance(1_000);
    expect(slow).toEqual([{ reason: 'stalled', idle_ms: 30_000 }]);
  });

  it('measures the real elapsed time when its timer fires late', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock);
    dog.received(100 * 1024);
    clock.advance(50_000);
    expect(slow).toEqual([{ reason: 'stalled', idle_ms: 50_000 }]);
    const rate = manualClock();
    const second = watch(rate, { ...PACE, maxGapMs: 0 });
    second.dog.received(600 * 1024);
    // One late look at 60 s: 600 KiB over 60 s is 10 KiB/s, below the 16 KiB/s minimum.
    rate.advance(60_000);
    expect(second.slow).toEqual([{ reason: 'too_slow', bytes_per_s: 10_240, window_ms: 60_000 }]);
  });

  it('refuses at the next byte when its timer never fires', () => {
    const inner = manualClock();
    const never: Clock = { ...inner, setTimeout: () => 0, clearTimeout: () => undefined };
    const { dog, slow } = watch(never, { ...PACE, minBytesPerS: 0 });
    dog.received(1);
    inner.advance(45_000);
    expect(slow).toEqual([]);
    dog.received(1);
    expect(slow).toEqual([{ reason: 'stalled', idle_ms: 45_000 }]);
  });

  it('does not hold against the client the time the server was paused, and only that time', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock);
    dog.received(1_000_000);
    clock.advance(10_000);
    dog.paused();
    // Its timer fires while the server is paused: nothing is judged against the client, and it is re-armed.
    clock.advance(120_000);
    expect(slow).toEqual([]);
    expect(clock.pending()).toBe(1);
    // A second pause notice while paused does not restart the pause.
    dog.paused();
    dog.resumed();
    dog.resumed();
    // 10 s before the pause and 19.999 s after it: not yet the 30 s gap.
    clock.advance(19_999);
    expect(slow).toEqual([]);
    clock.advance(1);
    expect(slow).toEqual([{ reason: 'stalled', idle_ms: 30_000 }]);
  });

  it('gives a burst that makes the server pause for milliseconds no credit: the window is still judged on its bytes', () => {
    // The review's case: 256 KiB every 2.5 s (~105 kB/s) against a 200 kB/s minimum over 4 s windows.
    const clock = manualClock();
    const { dog, slow } = watch(clock, { minBytesPerS: 200_000, windowMs: 4_000, maxGapMs: 3_000 });
    while (slow.length === 0 && clock.now() < 60_000) {
      // Time moves in small steps, so the timer fires when due rather than late.
      for (let step = 0; step < 499 && slow.length === 0; step += 1) clock.advance(5);
      if (slow.length > 0) break;
      // The burst fills our buffers: the server pauses the body while it writes, a few ms.
      dog.paused();
      for (let i = 0; i < 4; i += 1) dog.received(64 * 1024);
      clock.advance(5);
      dog.resumed();
    }
    // One burst in the first 4 s of active time (the 5 ms paused writing it left out).
    expect(slow).toEqual([{ reason: 'too_slow', bytes_per_s: 65_536, window_ms: 4_000 }]);
    expect(clock.now()).toBe(4_005);
    expect(clock.pending()).toBe(0);
  });

  it('turns a check off with 0, and sets no timer when both are off', () => {
    const clock = manualClock();
    const { dog, slow } = watch(clock, { minBytesPerS: 0, windowMs: 30_000, maxGapMs: 0 });
    expect(clock.pending()).toBe(0);
    clock.advance(3_600_000);
    dog.received(1);
    expect(slow).toEqual([]);
  });
});
