/** A promise's outcome as a value: what checks started ahead of their turn are kept as until their turn comes. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Never rejects, so an outcome nobody waits for (an earlier check refused) is not an unhandled rejection. */
export function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The value, or the error thrown, in the checker's turn. */
export function unsettle<T>(s: Settled<T>): T {
  if (s.ok) return s.value;
  throw s.error;
}
