import { afterEach, describe, expect, it } from 'vitest';
import { createJobFeed, parseCursor, type JobFeed } from '../../src/jobs/job-feed.ts';
import { markCompleted, markFailed } from '../../src/jobs/lifecycle.ts';
import type { JobStore } from '../../src/jobs/job-store.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { transcriptFor } from '../../src/jobs/transcript.ts';
import type { ChunkResult } from '../../src/transcribe/types.ts';
import { queuedJob, silentLogger } from '../fixtures/pipeline.ts';
import { joined, puller, said, texts } from '../support/job-feed-puller.ts';
import { manualClock, type ManualClock } from '../support/manual-clock.ts';

const POLL_MS = 1_000;
const ID = 'job_0123456789abcdefghijkl';

let store: JobStore;
afterEach(() => store?.close());

/** A processing job of `n` 10 s chunks, with `overlapS` of audio shared between neighbours. */
async function setup(n: number, overlapS: number, owner: string | null = null): Promise<JobStore> {
  store = new SqliteJobStore({ file: ':memory:' });
  await store.insertJob({ ...queuedJob(ID, n * 10), owner });
  await store.updateJob(ID, {
    status: 'processing',
    stage: 'transcribing',
    chunksTotal: n,
    chunkPlan: {
      mode: 'encode',
      format: 'wav',
      maxBytes: null,
      overlapS,
      hardCuts: overlapS > 0 ? n - 1 : 0,
      reason: 't',
    },
  });
  for (let i = 0; i < n; i++) await store.upsertChunk(ID, i, i * 10, 10);
  return store;
}

const done = (index: number, result: ChunkResult) => store.updateChunk(ID, index, { status: 'done', result });
const complete = async () => {
  const transcript = transcriptFor((await store.getJob(ID))!, await store.listChunks(ID), { partial: false });
  await markCompleted(store, ID, transcript, new Date(0));
  return transcript;
};

function feedOf(clock: ManualClock): JobFeed {
  return createJobFeed({ store, clock, pollMs: POLL_MS, logger: silentLogger });
}

describe('job feed', () => {
  it("gives each chunk's text once it and every chunk before it are final, in order, joined equal to the transcript", async () => {
    await setup(4, 0);
    const clock = manualClock();
    const feed = feedOf(clock);
    const f = puller(await feed.follow(ID, { owner: null, signal: new AbortController().signal }));
    expect((await f.take()).map((e) => e.type)).toEqual(['progress']);

    // Chunk 1 before chunk 0: nothing is final yet.
    await done(1, said('second, part'));
    clock.advance(POLL_MS);
    expect(texts(await f.take())).toEqual([]);

    await done(0, said('First part'));
    clock.advance(POLL_MS);
    const step = await f.take();
    expect(texts(step).map((e) => [e.id, e.chunk, e.text])).toEqual([
      ['1', 0, 'First part'],
      ['2', 1, ' second, part'],
    ]);
    expect(step.at(-1)).toMatchObject({ type: 'progress', id: '2', job: { chunks_done: 2, status: 'processing' } });

    await store.updateChunk(ID, 2, { status: 'failed', errorCode: 'CHUNK_FAILED' });
    await done(3, said(', the end.'));
    const transcript = await complete();
    clock.advance(POLL_MS);
    const rest = await f.take();
    expect(f.state.ended).toBe(true);
    expect(rest.at(-1)).toEqual({ type: 'end', id: '4', status: 'completed', error: null });
    expect(joined([...step, ...rest])).toBe(transcript.text);
    expect((await store.getTranscript(ID))?.text).toBe(transcript.text);
    expect(texts(rest).map((e) => e.text)).toEqual([' [inaudible: chunk 2 failed]', ', the end.']);
    expect(feed.active()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('glues a chunk to the text before a silent chunk, stitching only the chunks around the new ones', async () => {
    await setup(4, 0);
    const clock = manualClock();
    const f = puller(await feedOf(clock).follow(ID, { owner: null, signal: new AbortController().signal }));
    await f.take();
    await done(0, said('Hello'));
    await done(1, { ...said(''), segments: [] });
    clock.advance(POLL_MS);
    const first = await f.take();
    await done(2, said('world'));
    clock.advance(POLL_MS);
    const second = await f.take();
    expect(texts(second).map((e) => e.text)).toEqual([' world']);
    await done(3, said('again.'));
    const transcript = await complete();
    clock.advance(POLL_MS);
    const rest = await f.take();
    expect(joined([...first, ...second, ...rest])).toBe(transcript.text);
    expect(transcript.text).toBe('Hello world again.');
  });

  it('holds back a chunk until the next one is settled where they share overlap audio (its words said twice are cut)', async () => {
    await setup(3, 2);
    const clock = manualClock();
    const f = puller(await feedOf(clock).follow(ID, { owner: null, signal: new AbortController().signal }));
    await f.take();
    // Chunk 1's file starts 2 s before its span: its first words are the end of chunk 0 again.
    await done(0, said('one two three four five six', 1, 10));
    clock.advance(POLL_MS);
    expect(texts(await f.take())).toEqual([]);
    await done(1, {
      ...said('five six seven eight', 0, 6),
      segments: [{ start: 0, end: 6, text: 'five six seven eight' }],
    });
    clock.advance(POLL_MS);
    const first = await f.take();
    expect(texts(first).map((e) => e.chunk)).toEqual([0]);
    await done(2, said('nine ten'));
    const transcript = await complete();
    clock.advance(POLL_MS);
    const rest = await f.take();
    expect(joined([...first, ...rest])).toBe(transcript.text);
    expect(transcript.text).toBe('one two three four five six seven eight nine ten');
  });

  it('resumes from a Last-Event-ID with no text twice and none missing', async () => {
    await setup(3, 0);
    const clock = manualClock();
    const feed = feedOf(clock);
    await done(0, said('alpha'));
    await done(1, said('beta'));
    const ac = new AbortController();
    const first = puller(await feed.follow(ID, { owner: null, signal: ac.signal }));
    const seen = await first.take();
    const lastId = seen.at(-1)?.id;
    expect(lastId).toBe('2');
    ac.abort();
    clock.advance(POLL_MS);
    await first.take();
    expect(first.state.ended).toBe(true);

    await done(2, said('gamma'));
    const transcript = await complete();
    const again = puller(
      await feed.follow(ID, { owner: null, lastEventId: lastId, signal: new AbortController().signal }),
    );
    const rest = await again.take();
    expect(texts(rest).map((e) => e.chunk)).toEqual([2]);
    expect(joined([...seen, ...rest])).toBe(transcript.text);
    expect(rest.at(-1)).toMatchObject({ type: 'end', status: 'completed' });
  });

  it('stops when the client goes, its wait cancelled: no timer left and no follow counted', async () => {
    await setup(2, 0);
    const clock = manualClock();
    const feed = feedOf(clock);
    const ac = new AbortController();
    const f = puller(await feed.follow(ID, { owner: null, signal: ac.signal }));
    await f.take();
    expect(feed.active()).toBe(1);
    expect(clock.pending()).toBe(1);
    ac.abort();
    await f.take();
    expect(f.state.ended).toBe(true);
    expect(feed.active()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('waits out the poll by the clock, not by the timer: one firing early re-arms instead of reading too soon', async () => {
    await setup(2, 0);
    const clock = manualClock(0, { skewMs: -300 });
    const feed = feedOf(clock);
    const f = puller(await feed.follow(ID, { owner: null, signal: new AbortController().signal }));
    await f.take();
    await done(0, said('early'));
    // The timer fires 300 ms early: the clock says the poll is not due, so nothing is read yet.
    clock.advance(POLL_MS - 300);
    expect(await f.take()).toEqual([]);
    expect(clock.pending()).toBe(1);
    clock.advance(300);
    expect(texts(await f.take()).map((e) => e.text)).toEqual(['early']);
    expect(clock.pending()).toBe(1);
  });

  it('still looks when a timer fires late', async () => {
    await setup(2, 0);
    const clock = manualClock(0, { skewMs: 5_000 });
    const feed = feedOf(clock);
    const f = puller(await feed.follow(ID, { owner: null, signal: new AbortController().signal }));
    await f.take();
    await done(0, said('late'));
    clock.advance(POLL_MS + 5_000);
    expect(texts(await f.take()).map((e) => e.text)).toEqual(['late']);
    expect(clock.pending()).toBe(1);
  });

  it('ends a failed job with its error, after the text of the chunks that finished', async () => {
    await setup(3, 0);
    const clock = manualClock();
    await done(0, said('kept'));
    await markFailed(store, ID, { code: 'PROVIDER_AUTH', message: 'The provider refused the key.' }, new Date(0));
    const events = await puller(
      await feedOf(clock).follow(ID, { owner: null, signal: new AbortController().signal }),
    ).take();
    expect(events.map((e) => e.type)).toEqual(['text', 'progress', 'end']);
    expect(events.at(-1)).toEqual({
      type: 'end',
      id: '3',
      status: 'failed',
      error: { code: 'PROVIDER_AUTH', message: 'The provider refused the key.' },
    });
  });

  it("refuses another owner's job as not found and a Last-Event-ID it did not give", async () => {
    await setup(2, 0, 'owner-a');
    const feed = feedOf(manualClock());
    const signal = new AbortController().signal;
    await expect(feed.follow(ID, { owner: 'owner-b', signal })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(feed.follow('nope', { owner: 'owner-a', signal })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    for (const bad of ['3', '-1', '1.5', 'abc', '99999999', ' 1']) {
      await expect(feed.follow(ID, { owner: 'owner-a', lastEventId: bad, signal }), bad).rejects.toMatchObject({
        code: 'INVALID_FIELD',
        details: { field: 'last-event-id' },
      });
    }
    expect(parseCursor('2', 2)).toBe(2);
    expect(parseCursor(undefined, 0)).toBe(0);
    expect(feed.active()).toBe(0);
  });
});
