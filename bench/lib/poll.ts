/** Runs `tick` now and every `intervalMs` until stopped; `stop` takes one last sample and returns `result()`. */
export function pollUntilStopped<T>(intervalMs: number, tick: () => void, result: () => T): { stop(): T } {
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return result();
    },
  };
}
