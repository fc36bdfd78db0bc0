import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pollUntilStopped } from './poll.ts';

/** Bytes allocated on disk under a directory (st_blocks x 512, so sparse or preallocated files count as they are). */
export function dirBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true }).map(String);
  } catch {
    return 0;
  }
  for (const e of entries) {
    try {
      const st = statSync(path.join(dir, e));
      if (st.isFile()) total += st.blocks * 512;
    } catch {
      // Deleted between readdir and stat: a chunk sent and removed.
    }
  }
  return total;
}

/** Polls the size of a directory; the high water mark is what it needed at its fullest (polling misses brief spikes). */
export function sampleDir(dir: string, intervalMs = 100): { stop(): number } {
  let peak = 0;
  return pollUntilStopped(
    intervalMs,
    () => {
      peak = Math.max(peak, dirBytes(dir));
    },
    () => peak,
  );
}
