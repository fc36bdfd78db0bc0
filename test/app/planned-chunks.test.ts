import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laneTargetS, plannedChunkCount } from '../../src/chunker/cut-points.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { pollJob, removeDir, startServer, upload, type TestServer } from '../helper.ts';

/*
 * The chunk count a job shows from its first answer (progress total, the dry run's chunks_planned, the estimate) is
 * the validator's plan, until the chunk source's own plan replaces it: both must follow the same rule. With the
 * engine's chunk length, a short file's chunks are evened out over the job pool, but not a context=sequential
 * job's, whose chunks go one at a time.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-planned-chunks-'));
/** The speech fixture (16 kHz mono, a pause after every sentence) looped to 1210 s: 2 chunks of ~600 s, or 3 evened. */
const DURATION_S = 1210;
const long = path.join(dir, 'speech-1210s.wav');

describe('the planned chunk count', () => {
  let fake: FakeOpenAI;
  let server: TestServer;

  beforeAll(async () => {
    const speech = speechFixture();
    execFileSync('ffmpeg', [
      ...['-nostdin', '-v', 'error', '-y', '-stream_loop', String(Math.ceil(DURATION_S / speech.durationS))],
      ...['-i', speech.wav, '-t', String(DURATION_S), '-c', 'copy', long],
    ]);
    // Chunks are never answered: the jobs stay with their plan, and nothing is transcribed.
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    // The engine's own chunk settings (600 s over a pool of 3), which even a short file's chunks out.
    server = await startServer({
      CHUNK_SECONDS: undefined,
      CHUNK_OVERLAP_SECONDS: undefined,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      SHUTDOWN_TIMEOUT_MS: '100',
    });
    expect(server.config.chunking.fromEngine).toEqual(['chunkSeconds', 'overlapSeconds', 'concurrency']);
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
    rmSync(dir, { recursive: true, force: true });
  });

  it('is the count the chunk source plans from the first answer on, for a sequential job and for one evened out', async () => {
    // What the test relies on: this file makes 2 chunks as they are and 3 evened out over the pool of 3.
    expect(plannedChunkCount(DURATION_S, 600)).toBe(2);
    expect(plannedChunkCount(DURATION_S, laneTargetS(DURATION_S, 600, 3))).toBe(3);

    for (const [context, count] of [
      ['sequential', 2],
      ['none', 3],
    ] as const) {
      const dry = await upload(server.url, long, { context, dry_run: 'true' });
      expect(dry.status).toBe(200);
      expect({ context, planned: dry.body.chunks_planned }).toEqual({ context, planned: count });

      const created = await upload(server.url, long, { context });
      expect(created.status).toBe(202);
      const first = created.body.progress as { chunks_total: number };
      expect({ context, first: first.chunks_total }).toEqual({ context, first: count });
      // A chunk is sent once the plan is made (a WAV is planned whole before it is cut): its count is the plan's.
      const sending = await pollJob(
        server.url,
        created.body.id,
        (j) => (j.progress as unknown as { chunks_sending: number }).chunks_sending >= 1,
        `the ${context} job's first chunk sent`,
      );
      expect({ context, planned: sending.progress.chunks_total }).toEqual({ context, planned: count });
      const deleted = await fetch(`${server.url}/v1/jobs/${created.body.id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
    }
  });
});
