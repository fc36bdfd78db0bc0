import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import autocannon from 'autocannon';
import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { startChildServer } from '../lib/child-server.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { curlUpload, getJob, waitForJob } from '../lib/http.ts';
import { REPO_ROOT, startService } from '../lib/service.ts';
import { MetricSet } from '../lib/stats.ts';

const CONNECTIONS = 10;
const CHUNK_SECONDS = 60;

export interface Load {
  rps: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/** autocannon on one URL: a 1 s warm-up, then `durationS` measured. */
export async function load(url: string, durationS: number): Promise<Load> {
  // A short warm-up first, so JIT and connection setup are not in the measured window.
  await autocannon({ url, connections: CONNECTIONS, duration: 1 });
  const r = await autocannon({ url, connections: CONNECTIONS, duration: durationS });
  return { rps: r.requests.average, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

/**
 * GET /v1/jobs/:id of a completed job with 20 chunks, under autocannon from the harness process, against a
 * bare Fastify route returning the same JSON in its own process. The service is measured with its default
 * LOG_LEVEL=info (where a successful poll logs at debug, so nothing) and, in full mode, with LOG_LEVEL=warn, on the
 * same DATA_DIR.
 */
export async function pollingScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('polling');
  const durationS = ctx.quick ? 3 : 10;
  const dataDir = await mkdtemp(path.join(ctx.workDir, 'polling-data-'));
  const fake = await startFakeOpenAI();
  const raw: Array<Record<string, Load> & { bare: Load }> = [];
  try {
    const env = fakeProviderEnv(fake, { CHUNK_SECONDS: String(CHUNK_SECONDS), TRANSCRIBE_CONCURRENCY: '8' });
    let svc = await startService({
      env,
      workDir: ctx.workDir,
      name: 'polling-setup',
      dataDir,
      entry: ctx.serviceEntry,
    });
    let jobId: string;
    try {
      ctx.note('polling: preparing a completed job');
      const up = await curlUpload(`${svc.url}/v1/jobs`, audio.path);
      if (up.status !== 202) throw new Error(`upload answered ${up.status}`);
      jobId = String(up.body.id);
      const job = await waitForJob(svc.url, jobId, 10 * 60_000);
      if (job.status !== 'completed') throw new Error(`polling setup job ${job.status}`);
    } finally {
      await svc.stop();
    }
    const bodyFile = path.join(ctx.workDir, 'polling-body.json');

    for (let i = 0; i < ctx.runs; i++) {
      const levels: Record<string, Load> = {};
      // Quick mode keeps to the default level.
      for (const level of ctx.quick ? ['info'] : ['info', 'warn']) {
        ctx.note(`polling run ${i + 1}/${ctx.runs}: service LOG_LEVEL=${level}, ${durationS} s`);
        svc = await startService({
          env: { ...env, LOG_LEVEL: level },
          workDir: ctx.workDir,
          name: `polling-${level}`,
          dataDir,
          entry: ctx.serviceEntry,
        });
        try {
          await writeFile(bodyFile, JSON.stringify(await getJob(svc.url, jobId)));
          levels[level] = await load(`${svc.url}/v1/jobs/${jobId}`, durationS);
        } finally {
          await svc.stop();
        }
      }
      ctx.note(`polling run ${i + 1}/${ctx.runs}: bare Fastify, ${durationS} s`);
      const bare = await startChildServer(path.join(REPO_ROOT, 'bench', 'bare-server.ts'), { BODY_FILE: bodyFile });
      let bareLoad: Load;
      try {
        bareLoad = await load(`${bare.url}/v1/jobs/${jobId}`, durationS);
      } finally {
        await bare.stop();
      }
      const run = { ...levels, bare: bareLoad };
      raw.push(run);
      const b = run.bare;
      for (const [level, l] of Object.entries(run)) {
        if (level === 'bare') continue;
        m.add(`ours (LOG_LEVEL=${level}): req/s`, 'req/s', l.rps);
        m.add(`ours (LOG_LEVEL=${level}): p99`, 'ms', l.p99Ms);
        m.add(`ratio ours(${level})/bare req/s`, 'x', l.rps / b.rps, '>= 0.6');
      }
      m.add('bare Fastify: req/s', 'req/s', b.rps);
      m.add('bare Fastify: p99', 'ms', b.p99Ms);
      m.add(
        'non-2xx + errors (all sides)',
        'n',
        Object.values(run).reduce((s, l) => s + l.non2xx + l.errors, 0),
      );
    }
  } finally {
    await fake.close();
    if (!ctx.keep) await rm(dataDir, { recursive: true, force: true });
  }
  return {
    metrics: m.list(),
    details: { connections: CONNECTIONS, durationS, chunkSeconds: CHUNK_SECONDS, audio: audio.path, runs: raw },
  };
}
