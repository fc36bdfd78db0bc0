import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  /** Give up after this long. Below vitest's 120 s test timeout, so a failure names what it waited for. @default 60_000 */
  timeoutMs?: number;
  /** Pause between two checks. @default 20 */
  everyMs?: number;
}

/**
 * Polls `check` until it returns true; throws `timed out after N ms waiting for <what>` once timeoutMs have passed
 * (checked once more at the end, so a slow check still gets its last look). `what` may be a function, to describe
 * the last state seen. A check that throws ends the wait with its error. The only poll loop the tests use.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  options: UntilOptions = {},
): Promise<void> {
  const { timeoutMs = 60_000, everyMs = 20 } = options;
  // performance.now() is monotonic: a wall-clock step cannot end the wait early or stretch it.
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await sleep(everyMs);
  }
}
