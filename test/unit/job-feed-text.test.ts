import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJobFeed, textEvents } from '../../src/jobs/job-feed.ts';
import { markCompleted } from '../../src/jobs/lifecycle.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { transcriptFor } from '../../src/jobs/transcript.ts';
import type { Transcript } from '../../src/transcribe/types.ts';
import { queuedJob, silentLogger } from '../fixtures/pipeline.ts';
import { puller, said, texts } from '../support/job-feed-puller.ts';
import { manualClock } from '../support/manual-clock.ts';

const POLL_MS = 1_000;
const ID = 'job_0123456789abcdefghijkl';

describe('job feed across processes', () => {
  it('reads the rows another store instance (another process) writes to the same file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-feed-'));
    const file = path.join(dir, 'jobs.sqlite');
    const writer = new SqliteJobStore({ file, shared: true });
    const reader = new SqliteJobStore({ file, shared: true });
    try {
      await writer.insertJob(queuedJob(ID, 20));
      await writer.updateJob(ID, { status: 'processing', stage: 'transcribing', chunksTotal: 2 });
      await writer.upsertChunk(ID, 0, 0, 10);
      await writer.upsertChunk(ID, 1, 10, 10);
      const clock = manualClock();
      const feed = createJobFeed({ store: reader, clock, pollMs: POLL_MS, logger: silentLogger });
      const f = puller(await feed.follow(ID, { owner: null, signal: new AbortController().signal }));
      await f.take();
      await writer.updateChunk(ID, 0, { status: 'done', result: said('from the worker') });
      clock.advance(POLL_MS);
      expect(texts(await f.take()).map((e) => e.text)).toEqual(['from the worker']);
      await writer.updateChunk(ID, 1, { status: 'done', result: said('and more') });
      const transcript = transcriptFor((await writer.getJob(ID))!, await writer.listChunks(ID), { partial: false });
      await markCompleted(writer, ID, transcript, new Date(0));
      clock.advance(POLL_MS);
      const rest = await f.take();
      expect(rest.at(-1)).toMatchObject({ type: 'end', status: 'completed' });
      expect(f.state.ended).toBe(true);
    } finally {
      await writer.close();
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('textEvents', () => {
  const t = (segments: Array<[number, string]>): Transcript => ({
    job_id: ID,
    text: '',
    language: null,
    duration_s: 100,
    segments: segments.map(([chunk, text], i) => ({ chunk, text, start: i, end: i + 1 })),
  });

  it('glues each chunk to the one before as the transcript text does (punctuation, brackets, CJK, empty chunks)', async () => {
    const { joinText } = await import('../../src/transcribe/stitcher.ts');
    const cases: Array<Array<[number, string]>> = [
      [
        [0, 'Hello'],
        [1, ', world'],
        [2, '.'],
        [3, 'Next'],
      ],
      [
        [0, 'a ('],
        [1, 'b)'],
        [1, ' c  d '],
        [3, 'e'],
      ],
      [
        [0, '日本'],
        [1, '語です'],
        [2, 'English'],
        [3, '。'],
      ],
      [
        [1, 'starts late'],
        [2, ''],
      ],
    ];
    for (const segments of cases) {
      const transcript = t(segments);
      const whole = joinText(segments.map(([, s]) => s));
      // Any split point: the text before it and the deltas after it make the whole.
      for (let from = 0; from <= 4; from++) {
        const before = joinText(segments.filter(([c]) => c < from).map(([, s]) => s));
        const after = textEvents(transcript, from, 4).events.flatMap((e) => (e.type === 'text' ? [e.text] : []));
        expect(before + after.join(''), JSON.stringify({ segments, from })).toBe(whole);
      }
    }
  });
});
