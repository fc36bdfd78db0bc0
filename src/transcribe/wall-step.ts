/**
 * How far the wall clock (Date.now()) has been stepped since the last look: its distance to the monotonic clock
 * (performance.now()) moves only when someone sets the wall clock (NTP stepping, an operator, a VM resumed). NTP's
 * slewing moves it too, but by at most 0.5 ms per second, far under any bound worth acting on.
 */
export interface WallStepWatch {
  /** The step (ms; negative: back) since the previous call, or 0 when it is within the bound. */
  check(): number;
}

export function watchWallSteps(boundMs: number): WallStepWatch {
  const offset = () => Date.now() - performance.now();
  let last = offset();
  return {
    check() {
      const now = offset();
      const step = now - last;
      last = now;
      return Math.abs(step) > boundMs ? step : 0;
    },
  };
}
