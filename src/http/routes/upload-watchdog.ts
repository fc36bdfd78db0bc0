import type { Clock } from '../../transcribe/backoff.ts';

/** How fast an upload must keep arriving. 0 turns a check off. */
export interface UploadPace {
  /** Average bytes a second over every window of `windowMs`. */
  minBytesPerS: number;
  windowMs: number;
  /** Longest time without a byte. */
  maxGapMs: number;
}

export type SlowUpload =
  { reason: 'stalled'; idle_ms: number } | { reason: 'too_slow'; bytes_per_s: number; window_ms: number };

export interface UploadWatchdog {
  /** Bytes of the body that arrived just now. */
  received(bytes: number): void;
  /**
   * The server stopped reading (backpressure: its disk is behind) until `resumed`: that time, and only that, is
   * not held against the client.
   */
  paused(): void;
  resumed(): void;
  /** The body was read to its end (or refused): no more checks, the timer is cleared. */
  stop(): void;
}

export interface UploadWatchdogDeps {
  clock: Clock;
  pace: UploadPace;
  /** Called at most once, when the upload is too slow; the watchdog has stopped by then. */
  onSlow: (slow: SlowUpload) => void;
}

/**
 * Judges whether an upload keeps arriving fast enough, so that a client trickling or stalling its body cannot hold
 * a job directory lease until the request timeout. Every judgement compares times read from the clock, never a
 * count of timer firings: the timer only says "look again", and may fire early, late or not at all. It has one
 * owner, this watchdog, which re-arms it after each look; a byte arriving is also a look, so an upload that stalled
 * past the limit is refused at its next byte even when the timer never fired.
 *
 * Both measures run on active time: the clock's time less the time the server spent paused. Only the pause
 * itself is excluded, never the rest of a window: a client makes the server pause by sending a burst larger than
 * its buffers, and that pause lasts as long as our write of the burst (milliseconds), so a burst earns no credit.
 */
export function watchUpload(deps: UploadWatchdogDeps): UploadWatchdog {
  const { clock, pace, onSlow } = deps;
  const checkGap = pace.maxGapMs > 0;
  const checkRate = pace.minBytesPerS > 0 && pace.windowMs > 0;
  /** Time paused in pauses that have ended; the current one's start. */
  let pausedMs = 0;
  let pausedAt: number | null = null;
  const active = (now: number): number => now - pausedMs - (pausedAt === null ? 0 : now - pausedAt);
  const start = active(clock.now());
  let lastByteAt = start;
  let windowStart = start;
  let windowBytes = 0;
  let stopped = false;
  let timer: unknown = null;

  const clearTimer = () => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
  };

  const expire = (slow: SlowUpload) => {
    stopped = true;
    clearTimer();
    onSlow(slow);
  };

  /** False when the upload was found too slow (and refused). `now` is active time. */
  const judge = (now: number): boolean => {
    const idle = now - lastByteAt;
    if (checkGap && idle >= pace.maxGapMs) {
      expire({ reason: 'stalled', idle_ms: idle });
      return false;
    }
    const elapsed = now - windowStart;
    if (checkRate && elapsed >= pace.windowMs) {
      const bytesPerS = (windowBytes * 1000) / elapsed;
      if (bytesPerS < pace.minBytesPerS) {
        expire({ reason: 'too_slow', bytes_per_s: Math.floor(bytesPerS), window_ms: elapsed });
        return false;
      }
      windowStart = now;
      windowBytes = 0;
    }
    return true;
  };

  const arm = () => {
    clearTimer();
    const now = active(clock.now());
    const dues: number[] = [];
    if (checkGap) dues.push(lastByteAt + pace.maxGapMs);
    if (checkRate) dues.push(windowStart + pace.windowMs);
    if (dues.length === 0) return;
    // Due in active time, set in clock time: a pause meanwhile makes it fire early, and the look re-arms it.
    timer = clock.setTimeout(look, Math.max(1, Math.min(...dues) - now));
  };

  function look(): void {
    timer = null;
    if (stopped) return;
    if (judge(active(clock.now()))) arm();
  }

  arm();
  return {
    received(bytes) {
      if (stopped) return;
      const now = active(clock.now());
      // Judged before counting: the gap is the one this byte ended, and a window closed by it is judged without it.
      if (!judge(now)) return;
      windowBytes += bytes;
      lastByteAt = now;
      // The timer armed for the previous byte now fires early; it then re-arms for this one.
    },
    paused() {
      pausedAt ??= clock.now();
    },
    resumed() {
      if (pausedAt === null) return;
      pausedMs += clock.now() - pausedAt;
      pausedAt = null;
    },
    stop() {
      stopped = true;
      clearTimer();
    },
  };
}
