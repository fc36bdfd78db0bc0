import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3 } from '../../test/support/s3-server.ts';
import { createS3ObjectStore } from '../../src/storage/object-store.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { readLogLines } from '../lib/service.ts';
import { kbToMiB, MetricSet } from '../lib/stats.ts';

const LATENCY_MS = 200;

/** ms from the 'upload stored in the object store' line of the run's log (the put alone). */
function putMs(run: ServiceJobRun): number | null {
  const line = readLogLines(run.logFile).find((l) => l.msg === 'upload stored in the object store');
  return typeof line?.ms === 'number' ? line.ms : null;
}

/**
 * Uploads on object storage against local disk: the same WAV as a full job through a fresh service each way, local
 * disk (the default) and STORAGE_URL on s3rver (npm, filesystem-backed, on 127.0.0.1): upload start to the 202,
 * to the first provider request, and the service's peak RSS (a 300 MB file must not be held in memory: the put
 * holds at most 4 parts of 8 MiB). Then what a worker on another host adds before slicing: the get of that object
 * to a local file, timed through the service's own adapter. Both stores share this machine's disk and loopback,
 * so the figures are the service's overhead, not a network's.
 */
export async function objectStoreScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('object-store');
  const fake = await startFakeOpenAI({ latencyMs: LATENCY_MS });
  const s3 = await startTestS3('chunkscribe-bench');
  const runs: Array<{ store: 'local' | 's3'; run: ServiceJobRun; putMs: number | null; getMs: number | null }> = [];
  const mb = audio.bytes / 1e6;
  try {
    for (let i = 0; i < ctx.runs; i++) {
      for (const store of ['local', 's3'] as const) {
        ctx.note(`object-store run ${i + 1}/${ctx.runs}: ${store}, ${(audio.bytes / 2 ** 20).toFixed(0)} MiB WAV`);
        const env = fakeProviderEnv(fake, {
          ...(store === 's3' ? { ...s3Env(s3, 'bench/'), ...S3RVER_CREDENTIALS, UPLOAD_RETENTION_HOURS: '1' } : {}),
        });
        const run = await runServiceJob({
          ctx,
          fake,
          audio,
          name: `object-store-${store}`,
          timeoutMs: 30 * 60_000,
          env,
        });
        if (run.status !== 'completed') throw new Error(`object-store ${store}: job ${run.status}; log ${run.logFile}`);
        runs.push({
          store,
          run,
          putMs: store === 's3' ? putMs(run) : null,
          getMs: store === 's3' ? await timeGet() : null,
        });
      }
    }
  } finally {
    await fake.close();
    await s3.close();
  }
  for (const { store, run, putMs: put, getMs: get } of runs) {
    m.add(`${store}: upload -> 202`, 's', run.acceptedMs / 1000);
    m.add(
      `${store}: upload -> first provider request`,
      's',
      run.firstRequestMs === null ? null : run.firstRequestMs / 1000,
    );
    m.add(`${store}: peak RSS service (VmHWM)`, 'MiB', kbToMiB(run.hwmKb), '< 150');
    if (put !== null) m.add('s3: put (log)', 's', put / 1000);
    if (put !== null) m.add('s3: put throughput', 'MB/s', mb / (put / 1000));
    if (get !== null) m.add('s3: get to a worker scratch (adapter)', 's', get / 1000);
  }
  // Paired by run: what the object store adds to upload -> first request on one host.
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const [local, s3run] = [runs[i]?.run, runs[i + 1]?.run];
    if (local?.firstRequestMs != null && s3run?.firstRequestMs != null)
      m.add('added by S3: upload -> first request', 's', (s3run.firstRequestMs - local.firstRequestMs) / 1000);
  }
  return {
    metrics: m.list(),
    details: {
      latencyMs: LATENCY_MS,
      audio: { path: audio.path, bytes: audio.bytes, durationS: audio.durationS },
      runs,
    },
  };

  /** The object the run left (UPLOAD_RETENTION_HOURS keeps it) fetched as a worker would, then the bucket emptied. */
  async function timeGet(): Promise<number | null> {
    Object.assign(process.env, S3RVER_CREDENTIALS);
    const objects = createS3ObjectStore({
      bucket: s3.bucket,
      prefix: '',
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
    });
    const target = path.join(ctx.workDir, 'fetched-upload');
    try {
      const key = (await s3.objects()).at(-1);
      if (key === undefined) return null;
      const started = performance.now();
      await objects.getFile(key, target);
      return performance.now() - started;
    } finally {
      await objects.deleteUnder('');
      objects.close();
      await rm(target, { force: true });
    }
  }
}
