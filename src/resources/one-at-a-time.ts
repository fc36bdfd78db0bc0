/**
 * `make`, one call at a time: a caller while a call is under way gets that call's answer, and the next call after
 * it settles makes a fresh one (nothing is cached). For reads that many callers ask at once and that cost a
 * dependency a request each (the health report's store, Redis and bucket; the rate limiters' stats per scrape).
 */
export function oneAtATime<T>(make: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () =>
    (inFlight ??= make().finally(() => {
      inFlight = null;
    }));
}
