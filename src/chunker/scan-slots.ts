import os from 'node:os';

/**
 * Slots for CPU-bound work (one ffmpeg decoder each): at most `slots` tasks run at once (tasks something waits
 * for: `urgent`), and a free slot goes to the oldest waiting task that something waits for before any task done
 * ahead of need. Silence scans share the
 * cores this way instead of all running at once: the scan the first chunk waits for is not slowed by the scans
 * of the cuts after it, which then follow in the order they are needed. Tasks ahead of need take at most
 * `slots - 1` slots (at least one): a core stays free for a scan something comes to wait for, and meanwhile for
 * the rest of the work (cutting chunks, sending them).
 */
export interface ScanSlots {
  /** Runs `task` once a slot is free; `ahead`: nothing waits for it yet, so it gives way to what does. */
  run<T>(task: () => Promise<T>, ahead: boolean): Promise<T>;
}

/**
 * Slots for windowed silence scans: one per core (up to 4), since a scan is all decoding; scans something waits
 * for may take one more. A job's first scans are its first three targets' (the chunks a pool of 3 sends first),
 * all waited for at once: on two cores they run as two ffmpeg processes side by side (the detector puts the next
 * two targets in one run beside the first's), where two slots for three runs would start the third only when the
 * first two end, a whole scan later (docs/performance.md, issue 19's fourth round).
 */
export function createWindowScanSlots(): ScanSlots {
  const cores = Math.min(4, os.availableParallelism());
  return createScanSlots(cores, { urgent: cores + 1 });
}

/**
 * `slots` tasks at once, of which at most `slots - 1` (at least one) ahead of need; `urgent`: how many tasks
 * something waits for may run at once (default `slots`).
 */
export function createScanSlots(slots: number, opts: { urgent?: number } = {}): ScanSlots {
  const size = Math.max(1, Math.floor(slots));
  const urgentSize = Math.max(size, Math.floor(opts.urgent ?? size));
  const aheadSize = Math.max(1, size - 1);
  let busy = 0;
  let busyAhead = 0;
  const urgent: Array<() => void> = [];
  const later: Array<() => void> = [];
  const next = (): void => {
    for (;;) {
      let start: (() => void) | undefined;
      if (urgent.length > 0) start = busy < urgentSize ? urgent.shift() : undefined;
      else if (busy < size && busyAhead < aheadSize) start = later.shift();
      if (!start) return;
      start();
    }
  };
  return {
    run(task, ahead) {
      return new Promise((resolve, reject) => {
        const start = (): void => {
          busy += 1;
          if (ahead) busyAhead += 1;
          task()
            .then(resolve, reject)
            .finally(() => {
              busy -= 1;
              if (ahead) busyAhead -= 1;
              // After the reactions to this task's result: they may cancel a waiting task (a job stopped),
              // which then ends at once instead of starting an ffmpeg first.
              setImmediate(next);
            });
        };
        (ahead ? later : urgent).push(start);
        next();
      });
    },
  };
}
