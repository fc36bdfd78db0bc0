import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AudioFile } from '../lib/audio.ts';
import { startBenchCluster } from '../lib/cluster.ts';
import type { BenchContext, ScenarioOutput } from '../lib/context.ts';
import { curlUpload, waitForJob } from '../lib/http.ts';
import { logged, type ServiceHandle } from '../lib/service.ts';
import { MetricSet } from '../lib/stats.ts';

const LATENCY_MS = 200;
const UPLOADS = ['local', 's3'] as const;
type Uploads = (typeof UPLOADS)[number];

interface HostsStoreRun {
  uploads: Uploads;
  /** Upload start to the 202, ms. */
  acceptedMs: number;
  /** Upload start to the first transcription request the fake provider saw (sent by the worker host), ms. */
  firstRequestMs: number | null;
  /** The API host's put, from its log ('upload stored in the object store'), ms. */
  putMs: number | null;
  /** The worker host's get to its scratch, from its log ('upload fetched from the object store'), ms. */
  getMs: number | null;
}

const loggedMs = (svc: ServiceHandle, msg: string): number | null => {
  const ms = logged(svc.logLines(), msg)[0]?.ms;
  return typeof ms === 'number' ? ms : null;
};

/**
 * Upload to first provider request across hosts, uploads on S3 against local disk: PostgreSQL, Redis, s3rver and the
 * fake provider on one network namespace, a ROLE=api host and a ROLE=worker host (idle, waiting on the queue) in
 * two others. With the bucket each host has its own scratch: the API host puts the upload, the worker host gets it
 * before slicing. Local disk across hosts means a shared volume (NFS, EFS) as DATA_DIR on both: here one directory
 * of this machine's disk, so that row is the floor a real shared volume adds to. The same WAV as the one-host
 * object-store case, as a full job (latency 200 ms); paired by run.
 */
export async function objectStoreHostsScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('object-store-hosts');
  const cluster = await startBenchCluster(ctx, ['api', 'w1'], LATENCY_MS);
  const raw: HostsStoreRun[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      for (const uploads of UPLOADS) {
        ctx.note(
          `object-store-hosts run ${run + 1}/${ctx.runs}: ${uploads}, ${(audio.bytes / 2 ** 20).toFixed(0)} MiB WAV`,
        );
        raw.push(await measure(run, uploads));
      }
    }
  } finally {
    await cluster.close();
  }
  for (const r of raw) {
    m.add(`${r.uploads}: upload -> 202`, 's', r.acceptedMs / 1000);
    m.add(
      `${r.uploads}: upload -> first provider request`,
      's',
      r.firstRequestMs === null ? null : r.firstRequestMs / 1000,
    );
    if (r.putMs !== null) m.add('s3: put by the API host (log)', 's', r.putMs / 1000);
    if (r.getMs !== null) m.add('s3: get by the worker host (log)', 's', r.getMs / 1000);
  }
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const [local, s3] = [raw[i], raw[i + 1]];
    if (local?.firstRequestMs != null && s3?.firstRequestMs != null)
      m.add(
        'added by S3 across hosts: upload -> first request',
        's',
        (s3.firstRequestMs - local.firstRequestMs) / 1000,
      );
  }
  return {
    metrics: m.list(),
    details: {
      latencyMs: LATENCY_MS,
      audio: { path: audio.path, bytes: audio.bytes, durationS: audio.durationS },
      local: 'one DATA_DIR shared by the API and the worker host (a shared volume)',
      runs: raw,
    },
  };

  async function measure(run: number, uploads: Uploads): Promise<HostsStoreRun> {
    await cluster.fake.reset();
    const deployment = await cluster.deployment(`store${run}${uploads}`, uploads);
    const shared = uploads === 'local' ? await mkdtemp(path.join(ctx.workDir, 'shared-volume-')) : undefined;
    const procs: ServiceHandle[] = [];
    try {
      const worker = await deployment.start(cluster.net.host('w1'), 'worker', {}, shared);
      procs.push(worker);
      const api = await deployment.start(cluster.net.host('api'), 'api', {}, shared);
      procs.push(api);
      const t0 = Date.now();
      const up = await curlUpload(`${api.url}/v1/jobs`, audio.path);
      const acceptedMs = Date.now() - t0;
      if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body).slice(0, 300)}`);
      const job = await waitForJob(api.url, String(up.body.id), 30 * 60_000, 200);
      if (job.status !== 'completed')
        throw new Error(`object-store-hosts ${uploads}: job ${job.status}; log ${worker.logFile}`);
      const first = (await deployment.transcriptions())[0];
      return {
        uploads,
        acceptedMs,
        firstRequestMs: first ? first.time - t0 : null,
        putMs: loggedMs(api, 'upload stored in the object store'),
        getMs: loggedMs(worker, 'upload fetched from the object store'),
      };
    } finally {
      for (const p of procs.reverse()) await p.stop();
      if (shared !== undefined && !ctx.keep) await rm(shared, { recursive: true, force: true });
    }
  }
}
