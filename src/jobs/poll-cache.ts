import type { PollView } from './job-store.ts';

/** Jobs whose poll answer is kept between writes: enough for every client polling at once. */
const POLL_CACHE_SIZE = 1_000;

/**
 * Poll answers kept per job with the store version they were read at: a store serves one again only while its
 * version for the job is unchanged. Oldest entry out first when full.
 */
export class PollCache<V> {
  readonly #entries = new Map<string, { version: V; view: PollView }>();

  /** The view read at `version`, if that is still what is kept. */
  get(id: string, version: V): PollView | null {
    const hit = this.#entries.get(id);
    return hit !== undefined && hit.version === version ? hit.view : null;
  }

  set(id: string, version: V, view: PollView): void {
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.#entries.size >= POLL_CACHE_SIZE && !this.#entries.has(id))
      this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.delete(id);
    this.#entries.set(id, { version, view });
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }
}

/** With an owner, a job of another owner is invisible (as if it did not exist). */
export function visibleTo(view: PollView | null, owner: string | null | undefined): PollView | null {
  return view !== null && owner !== undefined && view.job.owner !== owner ? null : view;
}
