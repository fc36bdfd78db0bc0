/**
 * A time limit that only counts while a process runs: a slicer paused by back-pressure can wait for a
 * slow provider for hours without being taken for a hung ffmpeg.
 */
export interface RunClock {
  start(): void;
  pause(): void;
  resume(): void;
  stop(): void;
}

export function createRunClock(
  limitMs: number,
  onExpire: () => void,
  now: () => number = () => performance.now(),
): RunClock {
  let usedMs = 0;
  let since: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = (): void => {
    if (stopped || since !== null) return;
    since = now();
    timer = setTimeout(
      () => {
        stopped = true;
        onExpire();
      },
      Math.max(0, limitMs - usedMs),
    );
  };
  const halt = (): void => {
    clearTimeout(timer);
    if (since !== null) usedMs += now() - since;
    since = null;
  };
  return {
    start: run,
    resume: run,
    pause: halt,
    stop() {
      halt();
      stopped = true;
    },
  };
}
