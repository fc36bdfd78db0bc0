/** Largest number of requests that arrived in any window [t, t + windowMs) starting at a request. */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

/**
 * The most requests a token bucket of `rpm` and `burst` lets ARRIVE in any window of `windowMs` at a provider, when
 * each request may arrive up to `jitterMs` after its permit (reading the chunk, connecting, a busy event loop): the
 * arrivals in a window all took their permits within `windowMs + jitterMs`. Tests count arrivals at the fake, not
 * permits, so they bound arrivals with this, not with the bucket's own bound.
 */
export function arrivalBound(rpm: number, burst: number, windowMs: number, jitterMs: number): number {
  return burst + Math.ceil((rpm * (windowMs + jitterMs)) / 60_000);
}
