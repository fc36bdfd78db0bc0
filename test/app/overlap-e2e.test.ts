import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIPS, hummingSpeechFixture, speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, storeOf, upload, waitForJob, type TestServer } from '../helper.ts';
import { openEvents, textsOf } from '../support/event-stream-client.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';
import { werWords as words, wordEdits } from '../support/wer.ts';

interface TranscriptJson {
  text: string;
  duration_s: number;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
}

interface JobChunks {
  progress: { chunks_total: number; chunks_done: number };
}

/** Runs of n words said twice in a row ("he was he was"): what an overlap left in would produce. */
function repeatedRuns(w: readonly string[], n: number): string[] {
  const found: string[] = [];
  for (let i = 0; i + 2 * n <= w.length; i++) {
    const a = w.slice(i, i + n).join(' ');
    if (a === w.slice(i + n, i + 2 * n).join(' ')) found.push(a);
  }
  return found;
}

describe('chunk overlap with the local engine', () => {
  // Overlap is applied only when a cut misses every pause: under a hum no pause is silent, so every cut is hard.
  const speech = hummingSpeechFixture();
  const reference = words(CLIPS.map((c) => c.text).join(' '));
  let plain: TestServer;
  let overlapped: TestServer;

  beforeAll(async () => {
    plain = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      CHUNK_SECONDS: '8',
      CHUNK_OVERLAP_SECONDS: '0',
      TRANSCRIBE_CONCURRENCY: '1',
    });
    overlapped = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      CHUNK_SECONDS: '8',
      CHUNK_OVERLAP_SECONDS: '2',
      TRANSCRIBE_CONCURRENCY: '1',
    });
  });
  afterAll(async () => {
    await Promise.all([plain.close(), overlapped.close()]);
    await Promise.all([removeDir(plain.dataDir), removeDir(overlapped.dataDir)]);
  });

  async function transcribe(server: TestServer, overlapS: number): Promise<{ body: TranscriptJson; chunks: number }> {
    const created = await upload(server.url, speech.mp3, { language: 'en' });
    expect(created.status).toBe(202);
    // Followed live as well: the chunks' texts as the event stream gives them must join into the transcript's.
    const stream = await openEvents(server.url, created.body.id);
    const live = stream.readUntil((e) => e.event === 'end');
    // pocketsphinx on a shared 2-core machine: each of the test's two jobs gets most of its 600 s.
    const job = (await waitForJob(server.url, created.body.id, {}, { timeoutMs: 280_000 })) as unknown as JobChunks & {
      status: string;
      id: string;
    };
    expect(job.status).toBe('completed');
    // The job records how it was cut: an mp3 for the local engine is re-encoded to 16 kHz mono WAV.
    const store = await storeOf(server.dataDir);
    try {
      expect((await store.getJob(job.id))?.chunkPlan).toMatchObject({
        mode: 'encode',
        format: 'wav',
        overlapS,
        hardCuts: job.progress.chunks_total - 1,
      });
    } finally {
      await store.close();
    }
    const { status, body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript?format=json`);
    expect(status).toBe(200);
    expect(
      textsOf(await live)
        .map((t) => t.text)
        .join(''),
    ).toBe(body.text);
    return { body, chunks: job.progress.chunks_total };
  }

  it('gives the same words as without overlap, none said twice at a join, and times inside the recording', async () => {
    // One after the other, one chunk at a time: pocketsphinx is CPU-bound and has a per-chunk time limit.
    const a = await transcribe(plain, 0);
    const b = await transcribe(overlapped, 2);
    // The same cuts: overlap only adds audio in front of chunks 1..n.
    expect(b.chunks).toBe(a.chunks);
    expect(b.chunks).toBeGreaterThanOrEqual(4);
    const wa = words(a.body.text);
    const wb = words(b.body.text);
    // Not fewer words recognised correctly: more context at each join can only help the engine.
    expect(wordEdits(wb, reference)).toBeLessThanOrEqual(wordEdits(wa, reference) + 2);
    // Without de-duplication, 4+ joins x 2 s of speech would add ~20 words.
    expect(Math.abs(wb.length - wa.length)).toBeLessThanOrEqual(3);
    expect(repeatedRuns(wb, 2)).toEqual(repeatedRuns(wa, 2));
    for (const [i, seg] of b.body.segments.entries()) {
      expect(seg.start).toBeGreaterThanOrEqual(0);
      expect(seg.end).toBeLessThanOrEqual(b.body.duration_s + 0.01);
      if (i > 0) expect(seg.start).toBeGreaterThanOrEqual(b.body.segments[i - 1]?.start ?? 0);
    }
  }, 600_000);
});

describe('overlap on the openai engine with an mp3 upload', () => {
  const start = useFakeProviderService({ CHUNK_SECONDS: '8' });

  async function chunksSent(mp3: string, env: Record<string, string> = {}) {
    const { fake, server } = await start({}, { CHUNK_OVERLAP_SECONDS: '1.5', ...env });
    const created = await upload(server.url, mp3);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests
      .filter((r) => r.path === '/v1/audio/transcriptions')
      .sort((a, b) => a.filename!.localeCompare(b.filename!));
    expect(sent.length).toBe(job.progress.chunks_total);
    expect(sent.length).toBeGreaterThanOrEqual(3);
    const store = await storeOf(server.dataDir);
    try {
      const stored = await store.getJob(job.id);
      return {
        server,
        job,
        sent,
        plan: stored?.chunkPlan,
        spans: (await store.listChunks(job.id)).map((c) => c.durationS),
      };
    } finally {
      await store.close();
    }
  }

  it('copies the mp3 chunks, each after the first starting with the overlap as whole frames, when a cut misses every pause', async () => {
    const { server, job, sent, plan, spans } = await chunksSent(hummingSpeechFixture().mp3);
    expect(sent.every((r) => r.filename!.endsWith('.mp3'))).toBe(true);
    // 1.5 s is 57 frames of 1152 samples at 44.1 kHz.
    const leadS = (57 * 1152) / 44_100;
    // Its cut points were planned while it was cut (the hard cuts are not counted up front).
    expect(plan).toMatchObject({ mode: 'copy', format: 'mp3', lazy: true, hardCuts: null });
    expect(plan?.overlapS).toBeCloseTo(leadS, 5);
    // A file is its own span plus the overlap taken from the end of the chunk before it (to within a frame).
    sent.forEach((r, i) => expect(Math.abs(r.durationS! - spans[i]! - (i > 0 ? leadS : 0))).toBeLessThan(0.06));
    const t = (await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`)).body;
    expect(t.segments.at(-1)!.end).toBeLessThanOrEqual(t.duration_s + 0.05);
  });

  it('copies the mp3 cut in its pauses, with the overlap all the same (a copy carries it for free)', async () => {
    // 12 s targets land near the fixture's pauses (every clip ends in 1.5 s of silence); 8 s ones do not all.
    const { server, job, sent, plan, spans } = await chunksSent(speechFixture().mp3, { CHUNK_SECONDS: '12' });
    expect(sent.every((r) => r.filename!.endsWith('.mp3'))).toBe(true);
    // The recipe is chosen before the cut points are known: an mp3 copy takes its overlap either way.
    const leadS = (57 * 1152) / 44_100;
    expect(plan).toMatchObject({ mode: 'copy', format: 'mp3', lazy: true });
    expect(plan?.overlapS).toBeCloseTo(leadS, 5);
    // mp3 frames are 26 ms: a copied chunk spans its own stretch and its lead-in to within a frame or two.
    sent.forEach((r, i) => expect(Math.abs(r.durationS! - spans[i]! - (i > 0 ? leadS : 0))).toBeLessThan(0.1));
    // The words of each lead-in are said once: the transcript is as long as the recording, in order.
    const t = (await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript`)).body;
    t.segments.forEach((seg, i) => i > 0 && expect(seg.start).toBeGreaterThanOrEqual(t.segments[i - 1]!.start));
    expect(t.segments.at(-1)!.end).toBeLessThanOrEqual(t.duration_s + 0.05);
  });
});
