import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { laneTargetS, plannedChunkCount } from '../../src/chunker/cut-points.ts';
import { loadConfig } from '../../src/config.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { listenApp, pollJob, removeDir, tempDataDir, upload } from '../helper.ts';

/*
 * What a new user tries first: the local engine with every chunk setting left to its defaults, on a few minutes of
 * speech. It must not be one chunk on one core with no progress until the end.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-local-defaults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The speech fixture (~31 s, a pause after every sentence) 12 times over: ~6.3 min of 16 kHz mono WAV. */
const LOOPS = 12;
const speech = speechFixture();
const long = path.join(dir, 'speech-6min.wav');
execFileSync('ffmpeg', [
  '-nostdin',
  '-v',
  'error',
  '-y',
  '-stream_loop',
  String(LOOPS - 1),
  '-i',
  speech.wav,
  '-c',
  'copy',
  long,
]);

describe('the local engine with its own defaults', () => {
  it('cuts a 6-minute recording into several chunks, runs one per core, and reports progress chunk by chunk', async () => {
    const dataDir = await tempDataDir();
    // No CHUNK_SECONDS, CHUNK_OVERLAP_SECONDS or TRANSCRIBE_CONCURRENCY: the engine's defaults apply.
    const config = loadConfig({
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
      TRANSCRIBE_PROVIDER: 'local',
    });
    expect(config.chunking.fromEngine).toEqual(['chunkSeconds', 'overlapSeconds', 'concurrency']);
    expect(config.concurrency).toBe(os.availableParallelism());
    const { app, url } = await listenApp(config, pino({ level: config.logLevel }));
    try {
      const created = await upload(url, long, { language: 'en' });
      expect(created.status).toBe(202);
      const id = created.body.id;

      const planned = await pollJob(url, id, (j) => j.progress.chunks_total > 0, 'the chunk plan');
      // 45 s chunks evened out over the cores (~378 s on 2 cores: 10 of ~38 s rather than 9, the last of 18 s),
      // cut in the pauses, which may make one fewer than planned without them (the defaults of before made one
      // 600 s chunk). Where the plain plan already fills the cores it is kept (3 cores: 9).
      const durationS = Number((created.body.audio as { duration_s: number }).duration_s);
      const plain = plannedChunkCount(durationS, 45);
      const even = plannedChunkCount(durationS, laneTargetS(durationS, 45, os.availableParallelism()));
      expect(planned.progress.chunks_total).toBeLessThanOrEqual(even);
      expect(planned.progress.chunks_total).toBeGreaterThanOrEqual(even > plain ? plain + 1 : even - 1);

      // Progress moves while the job runs: chunks are done, and the percent rises, long before the end.
      const moving = await pollJob(
        url,
        id,
        (j) => j.status === 'processing' && j.progress.chunks_done >= 1 && j.progress.percent > 0,
        'a chunk done while the job still runs',
        { timeoutMs: 110_000 },
      );
      expect(moving.progress.chunks_done).toBeLessThan(moving.progress.chunks_total);
      expect(new Set(moving.percentsSeen.filter((p) => p > 0 && p < 100)).size).toBeGreaterThanOrEqual(1);

      // Done looking: the rest of the recording is not transcribed (pocketsphinx is CPU-bound on a shared machine).
      const deleted = await fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE' });
      expect(deleted.status).toBe(204);
    } finally {
      await app.close();
      await removeDir(dataDir);
    }
  }, 180_000);
});
