import type { JobFeedEvent } from '../../src/jobs/job-feed.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';

/** A chunk's result of one segment, timed from the start of its file. */
export const said = (text: string, start = 1, end = 8): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start, end, text }],
  timing: 'segment',
});

/** Pulls the events a follow has ready now; stops where it parks in its wait (or ends). */
export function puller(events: AsyncIterable<JobFeedEvent>) {
  const it = events[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<JobFeedEvent>> | null = null;
  const state = { ended: false };
  return {
    state,
    async take(): Promise<JobFeedEvent[]> {
      const out: JobFeedEvent[] = [];
      while (!state.ended) {
        pending ??= it.next();
        const r = await Promise.race([pending, new Promise<'parked'>((res) => setImmediate(() => res('parked')))]);
        if (r === 'parked') break;
        pending = null;
        if (r.done) state.ended = true;
        else out.push(r.value);
      }
      return out;
    },
  };
}

export const texts = (events: JobFeedEvent[]) => events.flatMap((e) => (e.type === 'text' ? [e] : []));
export const joined = (events: JobFeedEvent[]) =>
  texts(events)
    .map((e) => e.text)
    .join('');
