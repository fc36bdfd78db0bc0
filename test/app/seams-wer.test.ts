import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_OVERLAP_S } from '../../src/transcribe/providers/local/models.ts';
import { continuousSpeechFixture, transcribeWhole, twoVoicesFixture } from '../fixtures/continuous.ts';
import { getJson, removeDir, startServer, storeOf, upload, waitForJob, type TestServer } from '../helper.ts';
import { wer } from '../support/wer.ts';

interface TranscriptJson {
  text: string;
  words?: Array<{ start: number; end: number; word: string; chunk: number }>;
}

/** 6 s chunks of speech without a pause: every cut is hard and splits a word. */
const CHUNK_SECONDS = 6;
/**
 * WER the chunked job may lose against one plain run on the whole file, per case. pocketsphinx is deterministic
 * (the same figures every run), so each bound is what was measured plus a little, and refuses what was measured
 * before (docs/performance.md#seams). Continuous speech: 41.8 % against 43.2 % (-1.41, with clean chunks cut
 * mid-speech decoded without noise subtraction; before: +2.35, and +3.29 before each chunk's own cepstral mean),
 * bound +0.5 (four words over). Two synthetic voices: 62.6 % against 53.5 % (+9.03; +7.10 before the front end was
 * chosen per chunk, +14.84 before the chunk's own mean), bound +9.1: this one cut lost 3 words with the choice,
 * while over the seam yardstick's 8 cuts of the two voices it gains 2.5 points (bench/seam-yardstick.ts).
 */
const MARGIN = { continuous: 0.005, voices: 0.091 } as const;

describe('seams between overlapping chunks, local engine, speech without pauses', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      CHUNK_SECONDS: String(CHUNK_SECONDS),
      CHUNK_OVERLAP_SECONDS: String(LOCAL_OVERLAP_S),
      TRANSCRIBE_CONCURRENCY: '2',
    });
  });
  afterAll(async () => {
    await server.close();
    await removeDir(server.dataDir);
  });

  it.each([
    ['continuous speech (LibriVox, pauses over 0.1 s removed)', continuousSpeechFixture, MARGIN.continuous],
    ['two voices taking turns (espeak-ng)', twoVoicesFixture, MARGIN.voices],
  ] as const)(
    '%s: within the margin of one run on the whole file, each word once',
    async (_, fixture, margin) => {
      const fx = fixture();
      const created = await upload(server.url, fx.wav, { language: 'en' });
      expect(created.status).toBe(202);
      // pocketsphinx on a shared 2-core machine: ~10 chunks of 6 s plus the overlap.
      const job = await waitForJob(server.url, created.body.id, {}, { timeoutMs: 280_000 });
      expect(job.status).toBe('completed');
      const store = await storeOf(server.dataDir);
      try {
        // Every cut missed a pause, so the job carries the overlap at every seam.
        expect((await store.getJob(job.id))?.chunkPlan).toMatchObject({
          overlapS: LOCAL_OVERLAP_S,
          hardCuts: job.progress.chunks_total - 1,
        });
      } finally {
        await store.close();
      }
      expect(job.progress.chunks_total).toBeGreaterThanOrEqual(Math.floor(fx.durationS / CHUNK_SECONDS) - 1);

      const { status, body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript?format=json`);
      expect(status).toBe(200);
      const whole = wer(await transcribeWhole(fx), fx.reference);
      expect(wer(body.text, fx.reference)).toBeLessThanOrEqual(whole + margin);

      // The engine's word times come through, every seam placed on them: in time order, none said twice (the same
      // word again before the first one has ended is the overlap heard by both chunks).
      const words = body.words ?? [];
      expect(words.map((w) => w.word).join(' ')).toBe(body.text);
      for (let i = 1; i < words.length; i++) {
        const [a, b] = [words[i - 1]!, words[i]!];
        expect(b.start).toBeGreaterThanOrEqual(a.start);
        if (a.word === b.word) expect(b.start, `"${b.word}" twice at ${b.start}`).toBeGreaterThanOrEqual(a.end - 0.05);
      }
      expect(new Set(words.map((w) => w.chunk)).size).toBe(job.progress.chunks_total);
    },
    600_000,
  );
});
