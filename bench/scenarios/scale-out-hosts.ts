import type { AudioFile } from '../lib/audio.ts';
import { startBenchCluster } from '../lib/cluster.ts';
import type { BenchContext, ScenarioOutput } from '../lib/context.ts';
import { curlUpload, waitForAllCompleted } from '../lib/http.ts';
import type { ServiceHandle } from '../lib/service.ts';
import { MetricSet, median, round } from '../lib/stats.ts';

const JOBS = 40;
const WORKER_HOSTS = [1, 2, 3] as const;
/** Per request: the provider's time, not this machine's, is what a worker spends waiting on. */
const LATENCY_MS = 3_000;
const CHUNK_SECONDS = 30;
const UPLOAD_LANES = 4;
/** As the one-host scale-out case: 2 jobs per worker, 2 chunks of each in flight. */
const PER_WORKER = { MAX_CONCURRENT_JOBS: '2', TRANSCRIBE_CONCURRENCY: '2' } as const;

interface HostsRun {
  workers: number;
  /** The queue's release to the last job completed, s. */
  wallS: number;
  /** First upload to the last 202, the queue held: the API host's intake of all the jobs, s. */
  uploadsS: number;
  requests: number;
  /** Transcription requests per worker host (by its address), in host order. */
  perHost: number[];
}

/**
 * Scale-out across hosts: PostgreSQL, Redis, s3rver and the fake provider (latency 3 s, a rate limit that never
 * binds) on one network namespace, one ROLE=api host and 1, 2, 3 ROLE=worker hosts each in a namespace of its own
 * with its own scratch DATA_DIR: job state in PostgreSQL, uploads in the bucket, nothing shared on disk. With every
 * host up and the queue held, JOBS jobs of the 60 s mp3 (two 30 s chunks) are uploaded through the API host, four in
 * flight; then the queue is released: wall time from the release to the last job completed (and from the first
 * upload, the intake added), jobs per minute, throughput against 1 worker host (of the medians). All hosts share
 * this machine's 2 cores.
 */
export async function scaleOutHostsScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('scale-out-hosts');
  const cluster = await startBenchCluster(ctx, ['api', 'w1', 'w2', 'w3'], LATENCY_MS);
  const raw: HostsRun[] = [];
  try {
    for (let run = 0; run < ctx.runs; run++) {
      for (const workers of WORKER_HOSTS) {
        ctx.note(`scale-out-hosts run ${run + 1}/${ctx.runs}: ${JOBS} jobs, api host + ${workers} worker host(s)`);
        await cluster.fake.reset();
        const deployment = await cluster.deployment(`bench${run}w${workers}`, 's3');
        const extra = { ...PER_WORKER, CHUNK_SECONDS: String(CHUNK_SECONDS), LOG_LEVEL: 'warn' };
        const procs: ServiceHandle[] = [];
        // Held while the jobs are uploaded: on these 2 shared cores the API host's intake (ffprobe, a decode test,
        // the put) takes CPU from the workers, so a clock over both measures the machine more than the workers.
        const queue = deployment.queue();
        try {
          await queue.pause();
          const api = await deployment.start(cluster.net.host('api'), 'api', extra);
          procs.push(api);
          const hosts = WORKER_HOSTS.slice(0, workers).map((n) => cluster.net.host(`w${n}`));
          for (const host of hosts) procs.push(await deployment.start(host, 'worker', extra));
          const uploadStart = Date.now();
          const ids: string[] = [];
          // Four uploads in flight (a client per lane): the API host validates each one (ffprobe, a decode test) and
          // puts it in the bucket before its 202.
          await Promise.all(
            Array.from({ length: UPLOAD_LANES }, async () => {
              while (ids.length < JOBS) {
                ids.push('');
                const slot = ids.length - 1;
                const up = await curlUpload(`${api.url}/v1/jobs`, audio.path);
                if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body)}`);
                ids[slot] = String(up.body.id);
              }
            }),
          );
          const uploadsS = (Date.now() - uploadStart) / 1000;
          const released = Date.now();
          await queue.resume();
          await waitForAllCompleted(api.url, ids, 10 * 60_000);
          const wallS = (Date.now() - released) / 1000;
          const sent = await deployment.transcriptions();
          const perHost = hosts.map((h) => sent.filter((r) => r.remoteAddress === h.host).length);
          raw.push({ workers, wallS, uploadsS, requests: sent.length, perHost });
          m.add(`${workers} worker host(s): ${JOBS} jobs, release -> last completed`, 's', round(wallS, 2));
          m.add(`${workers} worker host(s): first upload -> last completed`, 's', round(uploadsS + wallS, 2));
          m.add(`${workers} worker host(s): jobs per minute`, 'jobs/min', round((JOBS * 60) / wallS, 1));
        } finally {
          await queue.close();
          for (const p of procs.reverse()) await p.stop();
        }
      }
    }
  } finally {
    await cluster.close();
  }
  const wall = (n: number) => median(raw.filter((r) => r.workers === n).map((r) => r.wallS));
  for (const n of WORKER_HOSTS.slice(1))
    m.add(`${n} worker hosts: throughput vs 1 worker host`, 'x', round(wall(1) / wall(n), 2));
  // Each chunk once, retries and re-sends on top: more than 2 per job means something was sent again.
  m.add('transcription requests per job (2 chunks)', 'n', median(raw.map((r) => r.requests / JOBS)));
  return {
    metrics: m.list(),
    details: {
      jobs: JOBS,
      latencyMs: LATENCY_MS,
      chunkSeconds: CHUNK_SECONDS,
      perWorker: PER_WORKER,
      // Latency alone: each worker host runs 2 jobs of 2 chunks at once, one 3 s round per 2 jobs.
      idealS: Object.fromEntries(WORKER_HOSTS.map((n) => [n, (Math.ceil(JOBS / (2 * n)) * LATENCY_MS) / 1000])),
      audioS: audio.durationS,
      stores: 'PostgreSQL (DATABASE_URL), uploads on s3rver (STORAGE_URL), queue and rate limit on Redis',
      runs: raw,
    },
  };
}
