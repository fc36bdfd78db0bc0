import { mkdtemp, rm } from 'node:fs/promises';
import { Queue } from 'bullmq';
import path from 'node:path';
import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import { startTestRedis } from '../../test/support/redis-server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { curlUpload, waitForAllCompleted } from '../lib/http.ts';
import { startService, type ServiceHandle } from '../lib/service.ts';
import { MetricSet, median, round } from '../lib/stats.ts';

const JOBS = 20;
const WORKERS = [1, 2, 3] as const;
/** Per request: the provider's time, not this machine's, is what a worker spends waiting on. */
const LATENCY_MS = 3_000;
const CHUNK_SECONDS = 30;

/**
 * Scale-out throughput: JOBS short jobs (two chunks each), queued through one API process, then run by 1, 2, 3
 * worker processes on a private redis-server (wall time from releasing the queue to the last job completed), with the fake provider's latency dominating and a rate limit that never binds.
 * Each worker runs MAX_CONCURRENT_JOBS=2 jobs with 2 chunks in flight each, so a worker is bound by latency, not
 * CPU: the speedup against 1 worker is what adding processes buys on this 2-core machine.
 */
export async function scaleOutScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('scale-out');
  const redis = await startTestRedis();
  const fake = await startFakeOpenAI({ latencyMs: LATENCY_MS });
  const raw: Array<{ workers: number; wallS: number; requests: number }> = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      for (const workers of WORKERS) {
        fake.reset();
        const dataDir = await mkdtemp(path.join(ctx.workDir, `scale-${workers}-`));
        const env = (role: string) =>
          fakeProviderEnv(fake, {
            REDIS_URL: redis.url,
            // A fresh queue per run: nothing left from the previous one.
            REDIS_PREFIX: `bench${run}w${workers}`,
            ROLE: role,
            CHUNK_SECONDS: String(CHUNK_SECONDS),
            TRANSCRIBE_CONCURRENCY: '2',
            MAX_CONCURRENT_JOBS: '2',
            LOG_LEVEL: 'warn',
            // The harness's own load must not make the API refuse uploads as busy.
            PRESSURE_EVENT_LOOP_DELAY_MS: '0',
            UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
          });
        const procs: ServiceHandle[] = [];
        // The service's job queue, held paused while jobs are uploaded and workers start: the clock measures the
        // workers only, not the API's validation of 20 uploads or node's start-up.
        const queue = new Queue('jobs', {
          connection: { url: redis.url, maxRetriesPerRequest: null },
          prefix: `bench${run}w${workers}`,
        });
        try {
          ctx.note(`scale-out run ${run + 1}/${ctx.runs}: ${JOBS} jobs, 1 API + ${workers} worker(s)`);
          await queue.pause();
          const api = await startService({
            env: env('api'),
            workDir: ctx.workDir,
            name: 'scale-api',
            dataDir,
            entry: ctx.serviceEntry,
          });
          procs.push(api);
          // Four uploads at a time: the API process validates each one with ffprobe and a decode check.
          const ids: string[] = [];
          for (let i = 0; i < JOBS; i += 4) {
            const batch = Array.from({ length: Math.min(4, JOBS - i) }, async () => {
              const up = await curlUpload(`${api.url}/v1/jobs`, audio.path);
              if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body)}`);
              return String(up.body.id);
            });
            ids.push(...(await Promise.all(batch)));
          }
          for (let w = 0; w < workers; w++) {
            procs.push(
              await startService({
                env: env('worker'),
                workDir: ctx.workDir,
                name: `scale-worker${w}`,
                dataDir,
                entry: ctx.serviceEntry,
              }),
            );
          }
          const started = Date.now();
          await queue.resume();
          await waitForAllCompleted(api.url, ids, 10 * 60_000);
          const wallS = (Date.now() - started) / 1000;
          const requests = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions').length;
          raw.push({ workers, wallS, requests });
          m.add(`${workers} worker(s): ${JOBS} jobs wall time`, 's', round(wallS, 2));
          m.add(`${workers} worker(s): jobs per minute`, 'jobs/min', round((JOBS * 60) / wallS, 1));
        } finally {
          await queue.close();
          for (const p of procs.reverse()) await p.stop();
          await rm(dataDir, { recursive: true, force: true });
        }
      }
    }
    const wall = (n: number) => median(raw.filter((r) => r.workers === n).map((r) => r.wallS));
    for (const n of WORKERS.slice(1)) m.add(`${n} workers: speedup vs 1 worker`, 'x', round(wall(1) / wall(n), 2));
  } finally {
    await fake.close();
    await redis.stop();
  }
  return {
    metrics: m.list(),
    details: { jobs: JOBS, latencyMs: LATENCY_MS, chunkSeconds: CHUNK_SECONDS, audioS: audio.durationS, runs: raw },
  };
}
