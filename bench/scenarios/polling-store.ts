import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres-server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { curlUpload, getJob, waitForJob, type JobResource } from '../lib/http.ts';
import { startService, type ServiceHandle } from '../lib/service.ts';
import { MetricSet, round } from '../lib/stats.ts';
import { load, type Load } from './polling.ts';

const STORES = ['sqlite', 'postgres'] as const;
type Store = (typeof STORES)[number];
/** The running job: 20 s chunks of the 20 min mp3 (60 chunks), 4 in flight, 1.5 s each: ~2.7 chunk results/s. */
const CHUNK_SECONDS = 20;
const CONCURRENCY = 4;
const LATENCY_MS = 1_500;

interface StoreRun {
  store: Store;
  running: Load;
  completed: Load;
  /** Chunk results the running job stored while polled (warm-up and window; each one a write that moves the view). */
  chunksDuringWindow: number;
  /** Whether the running job was still running when its window ended (else part of the window polled a finished job). */
  stillRunningAfter: boolean;
}

async function uploaded(svc: ServiceHandle, audio: AudioFile): Promise<string> {
  const up = await curlUpload(`${svc.url}/v1/jobs`, audio.path);
  if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body).slice(0, 300)}`);
  return String(up.body.id);
}

/** Polls until the job has stored its first chunk result: from then on it writes steadily. */
async function firstChunkDone(url: string, id: string): Promise<JobResource> {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const job = await getJob(url, id);
    if (job.status !== 'queued' && job.status !== 'processing') throw new Error(`running job ended ${job.status}`);
    if (job.progress.chunks_done > 0) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} stored no chunk within 5 min`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * GET /v1/jobs/:id (the poll: the job and its progress view) under autocannon, one service on the SQLite store
 * (the default) against one on PostgreSQL (DATABASE_URL, a throw-away cluster on 127.0.0.1), a fresh store each run:
 * first on a completed 2-chunk job with nothing else running (the poll cache answers; PostgreSQL still reads the
 * job's version on every poll), then on a 60-chunk job that is running and storing a chunk result every ~0.4 s
 * (each write moves the version, so the cache must read again; the job's ffmpeg and requests share the cores).
 */
export async function pollingStoreScenario(
  ctx: BenchContext,
  longAudio: AudioFile,
  shortAudio: AudioFile,
): Promise<ScenarioOutput> {
  const m = new MetricSet('polling-store');
  const durationS = ctx.quick ? 3 : 10;
  const fake = await startFakeOpenAI({ latencyMs: LATENCY_MS });
  let pg: TestPostgres | null = null;
  const raw: StoreRun[] = [];
  try {
    pg = await startTestPostgres();
    for (let i = 0; i < ctx.runs; i++) {
      for (const store of STORES) {
        ctx.note(
          `polling-store run ${i + 1}/${ctx.runs}: ${store}, ${durationS} s completed job + ${durationS} s running job`,
        );
        raw.push(await measure(store, store === 'postgres' ? pg.urlOf(await pg.createDatabase()) : null));
      }
    }
  } finally {
    await fake.close();
    await pg?.stop();
  }
  for (const r of raw) {
    m.add(`${r.store}: running job, req/s`, 'req/s', r.running.rps);
    m.add(`${r.store}: running job, p99`, 'ms', r.running.p99Ms);
    m.add(`${r.store}: chunk results stored while polled`, 'n', r.chunksDuringWindow);
    m.add(`${r.store}: completed job, req/s`, 'req/s', r.completed.rps);
    m.add(`${r.store}: completed job, p99`, 'ms', r.completed.p99Ms);
  }
  // Paired by run: PostgreSQL against SQLite, measured one after the other.
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const [lite, pgRun] = [raw[i], raw[i + 1]];
    if (!lite || !pgRun) continue;
    m.add('ratio postgres/sqlite req/s, running job', 'x', round(pgRun.running.rps / lite.running.rps, 3));
    m.add('ratio postgres/sqlite req/s, completed job', 'x', round(pgRun.completed.rps / lite.completed.rps, 3));
  }
  m.add(
    'non-2xx + errors (all runs)',
    'n',
    raw.reduce((s, r) => s + r.running.non2xx + r.running.errors + r.completed.non2xx + r.completed.errors, 0),
  );
  m.add('running job ended inside its window (runs)', 'n', raw.filter((r) => !r.stillRunningAfter).length);
  return {
    metrics: m.list(),
    details: {
      durationS,
      chunkSeconds: CHUNK_SECONDS,
      concurrency: CONCURRENCY,
      latencyMs: LATENCY_MS,
      audio: { running: longAudio.path, completed: shortAudio.path },
      runs: raw,
    },
  };

  async function measure(store: Store, databaseUrl: string | null): Promise<StoreRun> {
    const dataDir = await mkdtemp(path.join(ctx.workDir, `polling-${store}-`));
    const svc = await startService({
      env: fakeProviderEnv(fake, {
        CHUNK_SECONDS: String(CHUNK_SECONDS),
        TRANSCRIBE_CONCURRENCY: String(CONCURRENCY),
        // autocannon's polls must not make the service refuse the uploads as busy.
        PRESSURE_EVENT_LOOP_DELAY_MS: '0',
        ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
      }),
      workDir: ctx.workDir,
      name: `polling-${store}`,
      dataDir,
      entry: ctx.serviceEntry,
    });
    try {
      const done = await uploaded(svc, shortAudio);
      const finished = await waitForJob(svc.url, done, 5 * 60_000);
      if (finished.status !== 'completed') throw new Error(`completed-job setup ended ${finished.status}`);
      // The completed job first, on an otherwise idle service; then the running one, with the pipeline busy beside it.
      const completedLoad = await load(`${svc.url}/v1/jobs/${done}`, durationS);
      const running = await uploaded(svc, longAudio);
      const before = await firstChunkDone(svc.url, running);
      const runningLoad = await load(`${svc.url}/v1/jobs/${running}`, durationS);
      const after = await getJob(svc.url, running);
      // The running job is not needed any more: cancelled, so the stop does not wait for its requests in flight.
      await fetch(`${svc.url}/v1/jobs/${running}`, { method: 'DELETE' });
      return {
        store,
        running: runningLoad,
        completed: completedLoad,
        chunksDuringWindow: after.progress.chunks_done - before.progress.chunks_done,
        stillRunningAfter: after.status === 'processing',
      };
    } finally {
      await svc.stop();
      if (!ctx.keep) await rm(dataDir, { recursive: true, force: true });
    }
  }
}
