import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laneTargetS, plannedChunkCount } from '../../src/chunker/cut-points.ts';
import { OPENAI_MAX_BYTES } from '../../src/transcribe/providers/openai/models.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { pollJob, removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

/*
 * The chunk count a job shows from its first answer (progress total, the dry run's chunks_planned, the estimate) is
 * counted at validation, until the chunk source's own plan replaces it: both must come to the same count. It is
 * the chunk source of the job's model that counts: its engine's chunk length (with several backends, not the
 * default engine's), the model's byte cap, and the job pool's lanes a short file's chunks are evened out over
 * (not a context=sequential job's, whose chunks go one at a time).
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-planned-chunks-'));
const speech = speechFixture();

/** The speech fixture (16 kHz mono, a pause after every sentence) looped to `durationS`, as a WAV. */
function speechWav(durationS: number): string {
  const file = path.join(dir, `speech-${durationS}s.wav`);
  execFileSync('ffmpeg', [
    ...['-nostdin', '-v', 'error', '-y', '-stream_loop', String(Math.ceil(durationS / speech.durationS))],
    ...['-i', speech.wav, '-t', String(durationS), '-c', 'copy', file],
  ]);
  return file;
}

/** A job's count at its dry run, in its 202, and once its chunk plan is made (its first chunk is sent then). */
async function countsOf(server: TestServer, file: string, fields: Record<string, string>) {
  const dry = await upload(server.url, file, { ...fields, dry_run: 'true' });
  expect(dry.status).toBe(200);
  const created = await upload(server.url, file, fields);
  expect(created.status).toBe(202);
  const first = created.body.progress as { chunks_total: number };
  // A WAV is planned whole before it is cut: once a chunk is sent, the count is the plan's.
  const sending = await pollJob(
    server.url,
    created.body.id,
    (j) => (j.progress as unknown as { chunks_sending: number }).chunks_sending >= 1,
    `the first chunk of a job with ${JSON.stringify(fields)} sent`,
  );
  // Done looking: nothing more is transcribed.
  const deleted = await fetch(`${server.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' });
  expect(deleted.status).toBe(204);
  return { dryRun: dry.body.chunks_planned, first: first.chunks_total, planned: sending.progress.chunks_total };
}

/** The counts of a sequential job and of one evened out over the pool. */
async function countsByContext(server: TestServer, file: string, fields: Record<string, string>) {
  return {
    sequential: await countsOf(server, file, { ...fields, context: 'sequential' }),
    evened: await countsOf(server, file, { ...fields, context: 'none' }),
  };
}
const AGREE_2_SEQUENTIAL_3_EVENED = {
  sequential: { dryRun: 2, first: 2, planned: 2 },
  evened: { dryRun: 3, first: 3, planned: 3 },
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the planned chunk count with the engines’ own chunk settings, two backends', () => {
  let fake: FakeOpenAI;
  let server: TestServer;

  beforeAll(async () => {
    // Chunks sent to OpenAI are never answered: those jobs stay with their plan, and nothing is transcribed.
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    // OpenAI by default (600 s chunks over a pool of 3), the local engine beside it (45 s chunks).
    server = await startServer({
      CHUNK_SECONDS: undefined,
      CHUNK_OVERLAP_SECONDS: undefined,
      TEST_OPENAI_KEY: FAKE_OPENAI_KEY,
      BACKENDS_JSON: JSON.stringify({
        default_model: 'whisper-1',
        backends: [
          {
            name: 'openai',
            engine: 'openai',
            base_url: fake.url,
            api_key_env: 'TEST_OPENAI_KEY',
            models: [{ id: 'whisper-1' }],
          },
          { name: 'local', engine: 'local', models: [{ id: 'pocketsphinx-en-us' }] },
        ],
      }),
      SHUTDOWN_TIMEOUT_MS: '100',
    });
    expect(server.config.chunking.fromEngine).toEqual(['chunkSeconds', 'overlapSeconds', 'concurrency']);
    expect(server.config.concurrency).toBe(3);
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it('is the count the chunk source plans from the first answer on, for a sequential job and for one evened out', async () => {
    const DURATION_S = 1210;
    // What the test relies on: this file makes 2 chunks of 600 s as they are, and 3 evened out over the pool of 3.
    expect(plannedChunkCount(DURATION_S, 600)).toBe(2);
    expect(plannedChunkCount(DURATION_S, laneTargetS(DURATION_S, 600, 3))).toBe(3);
    const long = speechWav(DURATION_S);

    expect(await countsByContext(server, long, {})).toEqual(AGREE_2_SEQUENTIAL_3_EVENED);
  });

  it("counts a job on the other backend's model with that engine's chunk length, not the default engine's", async () => {
    const DURATION_S = 60;
    // What the test relies on: 60 s is one chunk at OpenAI's 600 s, two at the local engine's 45 s, and three of
    // 20 s evened out over the pool of 3.
    expect(plannedChunkCount(DURATION_S, 600)).toBe(1);
    expect(plannedChunkCount(DURATION_S, 45)).toBe(2);
    expect(plannedChunkCount(DURATION_S, laneTargetS(DURATION_S, 45, 3))).toBe(3);
    const short = speechWav(DURATION_S);

    const local = { model: 'pocketsphinx-en-us', language: 'en' };
    expect(await countsByContext(server, short, local)).toEqual(AGREE_2_SEQUENTIAL_3_EVENED);
  }, 60_000);
});

describe("the planned chunk count under the model's byte cap", () => {
  const start = useFakeProviderService({ SHUTDOWN_TIMEOUT_MS: '100' });

  it('counts the chunks a WAV copied under the 25 MiB cap is cut into, shorter than CHUNK_SECONDS', async () => {
    const DURATION_S = 660;
    const wav = speechWav(DURATION_S);
    // What the test relies on: 660 s at 640 s is one chunk (the 20 s tail is merged), but a copied chunk of this
    // WAV (32 kB/s) may hold at most 80 % of 25 MiB, ~655 s: so two chunks of ~330 s.
    const maxChunkS = Math.floor((OPENAI_MAX_BYTES * 0.8) / (statSync(wav).size / DURATION_S));
    expect(maxChunkS).toBeLessThan(DURATION_S);
    expect(plannedChunkCount(DURATION_S, 640)).toBe(1);
    expect(plannedChunkCount(DURATION_S, 640, { maxChunkS })).toBe(2);

    const { server } = await start({ faults: () => 'stall' }, { CHUNK_SECONDS: '640' });
    const counts = await countsOf(server, wav, {});
    expect(counts).toEqual({ dryRun: 2, first: 2, planned: 2 });
  }, 60_000);
});
