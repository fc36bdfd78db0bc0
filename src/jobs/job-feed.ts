import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../errors.ts';
import { monotonicClock, wallClockOf, type Clock } from '../transcribe/backoff.ts';
import { atDeadline } from '../transcribe/deadline-timer.ts';
import { joinText, MIN_OVERLAP_S } from '../transcribe/stitcher.ts';
import type { Transcript } from '../transcribe/types.ts';
import { isJobId } from './ids.ts';
import { computeProgress } from './progress.ts';
import type { JobStore } from './job-store.ts';
import { transcriptFor } from './transcript.ts';
import { isLive, type ChunkState, type JobRecord, type JobStage, type JobStatus } from './types.ts';

/** What a follower needs of a job's progress: a snapshot, sent again whole whenever it changes. */
export interface FeedProgress {
  status: JobStatus;
  stage: JobStage | null;
  percent: number;
  chunks_total: number;
  chunks_done: number;
  chunks_failed: number;
  eta_s: number | null;
  audio_s_done: number;
}

/**
 * Every event carries `id`, the text cursor: how many chunks' text the client has been given (the index of the
 * first chunk whose text is still to come). Resuming from an id skips exactly the text already sent; progress is
 * a snapshot and is sent again on resume, so it needs no place of its own in the id.
 */
export type JobFeedEvent =
  | { type: 'progress'; id: string; job: FeedProgress }
  /** A chunk's stitched text, final, in chunk order; `text` starts with the glue (a space) to what came before. */
  | { type: 'text'; id: string; chunk: number; start: number; end: number; text: string }
  | { type: 'end'; id: string; status: JobStatus; error: { code: ErrorCode; message: string } | null };

export interface FollowOptions {
  /** The caller's owner (request.owner): another owner's job is NOT_FOUND, as on GET /v1/jobs/{id}. */
  owner: string | null;
  /** The id of the last event the client received (SSE Last-Event-ID). */
  lastEventId?: string;
  /** Aborted when the client has gone: the follow ends at its next step, its wait cancelled. */
  signal: AbortSignal;
}

export interface JobFeed {
  /**
   * The job's events from `lastEventId` on, until its end event (then the iteration ends) or the signal aborts.
   * Checks the job and the id before returning, so a caller can still answer with an error: throws NOT_FOUND
   * (no such job for this owner) or INVALID_FIELD (a Last-Event-ID this feed did not give for this job).
   */
  follow(jobId: string, opts: FollowOptions): Promise<AsyncIterable<JobFeedEvent>>;
  /** Follows in progress (each holds at most one timer). */
  active(): number;
}

export interface JobFeedDeps {
  store: Pick<JobStore, 'pollView' | 'listChunks' | 'getTranscript'>;
  /** The waits between polls: this process's own, which a wall clock step must not stretch. @default monotonicClock */
  clock?: Clock;
  /**
   * Compared with the dates the store holds (a job's progress and estimate).
   * @default the `clock` option when one is given (a test's single clock), else systemClock
   */
  wallClock?: Clock;
  /** How often a follower reads the rows (a job's rows may be written by another process: polling is the way to see them). */
  pollMs: number;
  logger: Logger;
}

/** A cursor is a chunk count; longer than this is not one we gave. */
const MAX_CURSOR_DIGITS = 7;

const settled = (c: ChunkState | undefined) => c?.status === 'done' || c?.status === 'failed';

/**
 * How many chunks, from the first, have text that can no longer change while the job runs: each one settled
 * (done, or failed: a gap marker), and the next one settled too where the two share overlap audio, since the
 * stitcher drops the words said twice from the end of the first. Rows are in index order.
 */
export function finalChunkCount(job: Pick<JobRecord, 'chunkPlan'>, chunks: readonly ChunkState[]): number {
  const overlapS = job.chunkPlan?.overlapS ?? 0;
  let n = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i] as ChunkState;
    if (c.index !== i || !settled(c)) break;
    const next = chunks[i + 1];
    // Mirrors the stitcher's overlap test, with the lead transcript.ts gives each chunk after the first.
    const nextStart = next === undefined ? 0 : next.startS - Math.min(overlapS, c.durationS);
    const sharesAudio =
      next === undefined
        ? overlapS >= MIN_OVERLAP_S
        : Math.max(c.startS + c.durationS, nextStart + overlapS) - nextStart >= MIN_OVERLAP_S;
    if (sharesAudio && !settled(next)) break;
    n = i + 1;
  }
  return n;
}

/**
 * The text events of chunks [from, to) of a transcript stitched from rows in which those chunks are final, and
 * the last character of the text so far. Each delta is what the chunk adds to the transcript's text, so the
 * deltas of a whole job joined are its text. `before`: the last character of the text before `from`, when the
 * transcript does not hold those chunks (it is all the glue to what follows depends on); else read from it.
 */
export function textEvents(
  transcript: Transcript,
  from: number,
  to: number,
  before?: string,
): { events: JobFeedEvent[]; last: string } {
  let last = before ?? '';
  const byChunk = new Map<number, Transcript['segments']>();
  for (const s of transcript.segments) {
    if (s.chunk < from) {
      const t = s.text.trim();
      if (before === undefined && t !== '') last = t.at(-1) as string;
    } else if (s.chunk < to) byChunk.set(s.chunk, [...(byChunk.get(s.chunk) ?? []), s]);
  }
  const events: JobFeedEvent[] = [];
  for (let chunk = from; chunk < to; chunk++) {
    const segments = byChunk.get(chunk) ?? [];
    const joined = joinText([last, ...segments.map((s) => s.text)]);
    const text = joined.slice(last.length);
    if (text === '') continue;
    last = joined.at(-1) as string;
    const first = segments[0];
    const final = segments.at(-1);
    events.push({ type: 'text', id: String(chunk + 1), chunk, start: first?.start ?? 0, end: final?.end ?? 0, text });
  }
  return { events, last };
}

/**
 * The first chunk to stitch for the text of chunks from `from` on: the one before (its lead of overlap is then
 * right for `from`), and where chunks share overlap audio two more, since the words said twice are cut against
 * the chunk before, itself cut against the one before it. Stitching a window instead of the whole job keeps each
 * step short for a job of thousands of chunks.
 */
function windowStart(job: Pick<JobRecord, 'chunkPlan'>, from: number): number {
  return Math.max(0, from - ((job.chunkPlan?.overlapS ?? 0) >= MIN_OVERLAP_S ? 3 : 1));
}

function progressOf(job: JobRecord, chunks: readonly ChunkState[], now: number): FeedProgress {
  const p = computeProgress({
    status: job.status,
    durationS: job.audio.duration_s,
    chunksTotal: job.chunksTotal,
    chunks,
    previousPercent: job.percent,
    transcribingStartedAt: job.transcribingStartedAt === null ? null : Date.parse(job.transcribingStartedAt),
    now,
  });
  return {
    status: job.status,
    stage: job.stage,
    percent: p.percent,
    chunks_total: p.chunks_total,
    chunks_done: p.chunks_done,
    chunks_failed: p.chunks_failed,
    eta_s: p.eta_s,
    audio_s_done: p.audio_s_done,
  };
}

/** What makes a progress event worth sending: the ETA alone changes at every look and is not news. */
const progressKey = (p: FeedProgress) =>
  `${p.status}|${p.stage}|${p.percent}|${p.chunks_total}|${p.chunks_done}|${p.chunks_failed}`;

export function createJobFeed(deps: JobFeedDeps): JobFeed {
  const { store, clock = monotonicClock, pollMs, logger } = deps;
  const wall = wallClockOf(deps);
  let active = 0;

  const notFound = (id: string) => new AppError('NOT_FOUND', `No job ${JSON.stringify(id)}.`);

  /** Resolves at the next poll or on abort, whichever is first; leaves no timer behind. */
  function pause(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        timer.cancel();
        signal.removeEventListener('abort', done);
        resolve();
      };
      // The one owner of this wait: atDeadline re-arms when its timer fires before the clock reaches the time.
      const timer = atDeadline(clock, clock.now() + pollMs, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * A completed job's text is its stored transcript's, the one clients download (every chunk, gaps marked); any
   * other end, and a running job, show the chunks that finished, as the partial transcript does: stitched from
   * the window around the new chunks once the text before them is known, from the first chunk until then.
   */
  async function textSource(
    job: JobRecord,
    from: number,
    through: number,
    tail: string | undefined,
  ): Promise<Transcript> {
    if (job.status === 'completed') {
      return (
        (await store.getTranscript(job.id)) ?? transcriptFor(job, await store.listChunks(job.id), { partial: false })
      );
    }
    const rows = (await store.listChunks(job.id)).slice(tail === undefined ? 0 : windowStart(job, from), through + 1);
    return transcriptFor(job, rows, { partial: true });
  }

  async function* run(jobId: string, owner: string | null, from: number, signal: AbortSignal) {
    const log = logger.child({ jobId });
    let cursor = from;
    let sentProgress = '';
    /** The last character of the text before the cursor, once known (nothing comes before chunk 0). */
    let tail: string | undefined = from === 0 ? '' : undefined;
    // Counted from the first step: an iterator never started holds nothing (and its finally would never run).
    active += 1;
    try {
      while (!signal.aborted) {
        // The poll view: one read of the job and its chunk states, answered from the store's cache between writes.
        const view = await store.pollView(jobId, owner);
        if (!view) {
          // Deleted while followed: nothing more will come.
          yield { type: 'end', id: String(cursor), status: 'cancelled', error: null } satisfies JobFeedEvent;
          return;
        }
        const { job, chunks: states } = view;
        const ended = !isLive(job.status);
        const through = ended ? states.length : finalChunkCount(job, states);
        if (through > cursor) {
          const text = textEvents(await textSource(job, cursor, through, tail), cursor, through, tail);
          for (const event of text.events) {
            if (signal.aborted) return;
            yield event;
          }
          cursor = through;
          tail = text.last;
        }
        const progress = progressOf(job, states, wall.now());
        const key = progressKey(progress);
        if (key !== sentProgress) {
          sentProgress = key;
          yield { type: 'progress', id: String(cursor), job: progress } satisfies JobFeedEvent;
        }
        if (ended) {
          const error = job.errorCode === null ? null : { code: job.errorCode, message: job.errorMessage ?? '' };
          yield { type: 'end', id: String(cursor), status: job.status, error } satisfies JobFeedEvent;
          return;
        }
        await pause(signal);
      }
    } finally {
      active -= 1;
      log.debug({ cursor, aborted: signal.aborted }, 'job feed follow ended');
    }
  }

  return {
    async follow(jobId, opts) {
      const view = isJobId(jobId) ? await store.pollView(jobId, opts.owner) : null;
      if (!view) throw notFound(jobId);
      const from = parseCursor(opts.lastEventId, view.chunks.length);
      return run(jobId, opts.owner, from, opts.signal);
    },
    active: () => active,
  };
}

/** The chunk to start from: 0 without an id; an id past the job's chunks, or not a cursor at all, is refused. */
export function parseCursor(lastEventId: string | undefined, chunkCount: number): number {
  if (lastEventId === undefined || lastEventId === '') return 0;
  const n = /^\d+$/.test(lastEventId) && lastEventId.length <= MAX_CURSOR_DIGITS ? Number(lastEventId) : -1;
  if (n < 0 || n > chunkCount) {
    throw new AppError(
      'INVALID_FIELD',
      'Last-Event-ID is not an event id this server gave for this job; send the last id received unchanged, or none to start over',
      { details: { field: 'last-event-id' } },
    );
  }
  return n;
}
