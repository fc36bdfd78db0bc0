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

/**
 * `make`, one call at a time (oneAtATime), and its answer given again to every call within `reuseMs` after it
 * settled, as `now` tells time (no timer: an answer is stale when a caller finds it so). For reads a client may
 * ask for one after another, each of which would cost a dependency a request. A call that fails is not kept; a
 * clock set back (`now` before the answer's time) counts as stale, never as fresh for ever.
 */
export function reusedFor<T>(make: () => Promise<T>, opts: { reuseMs: number; now: () => number }): () => Promise<T> {
  let last: { value: T; at: number } | null = null;
  const fresh = oneAtATime(async () => {
    const value = await make();
    last = { value, at: opts.now() };
    return value;
  });
  return () => {
    const age = last ? opts.now() - last.at : -1;
    return last && age >= 0 && age < opts.reuseMs ? Promise.resolve(last.value) : fresh();
  };
}
