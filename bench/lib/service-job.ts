import type { FakeOpenAI, RequestLogEntry } from '../../test/fake-openai/server.ts';
import type { AudioFile } from './audio.ts';
import type { BenchContext } from './context.ts';
import { sampleDir } from './disk.ts';
import { curlUpload, waitForJob, waitForReady } from './http.ts';
import { readCpuMs, readStatusKb, sampleRss } from './proc.ts';
import { logged, startService } from './service.ts';
import { median } from './stats.ts';

export interface ServiceJobRun {
  status: string;
  errorCode: string | null;
  /** Upload start to the job's completed_at, ms. */
  wallMs: number;
  /** Upload start to the 202 (upload, validation, admission), ms. */
  acceptedMs: number;
  /** Upload start to the first transcription request the fake provider saw, ms. */
  firstRequestMs: number | null;
  /** Upload start to the last transcription request (when slicing is the bottleneck, about when it ended), ms. */
  lastRequestMs: number | null;
  chunks: number;
  /** Transcription requests the provider saw (chunks + retries). */
  requests: number;
  /**
   * Median time the fake provider itself took per answered request, from having read the body to answering: its
   * latency plus its own work (form parsing, hashing, an ffprobe of the file), ms. The upload before it is not in it.
   */
  providerMs: number | null;
  /** Sum of the validation gate's checks, from the service log, ms. */
  validationMs: number | null;
  /** 'job accepted' to 'slicing' in the service log: queueing and the silence scan of the planner, ms. */
  planMs: number | null;
  /** VmRSS right after the service listened, before the upload, KiB. */
  idleRssKb: number | null;
  hwmKb: number | null;
  /** CPU the service used from the 202 to the job's end (its own; the ffmpeg and ffprobe it ran), ms. */
  cpuMs: { ownMs: number; childrenMs: number } | null;
  treePeakKb: number;
  diskPeakBytes: number | null;
  logFile: string;
}

export interface ServiceJobOptions {
  ctx: BenchContext;
  fake: FakeOpenAI;
  audio: AudioFile;
  env: Record<string, string>;
  name: string;
  timeoutMs: number;
  watchDisk?: boolean;
}

/** The median of the fake's own time per answered request (see ServiceJobRun.providerMs). */
function providerMsOf(sent: readonly RequestLogEntry[]): number | null {
  const own = sent.flatMap((r) =>
    r.answeredAt !== null && r.receivedAt !== null ? [r.answeredAt - r.receivedAt] : [],
  );
  return own.length > 0 ? median(own) : null;
}

function msOf(line: Record<string, unknown> | undefined): number | null {
  return typeof line?.time === 'number' ? line.time : null;
}

/** One job through a fresh service process: upload with curl, poll to the end, read timings from the fake and the log. */
export async function runServiceJob(o: ServiceJobOptions): Promise<ServiceJobRun> {
  o.fake.reset();
  const svc = await startService({
    env: o.env,
    workDir: o.ctx.workDir,
    name: o.name,
    keep: o.ctx.keep,
    entry: o.ctx.serviceEntry,
  });
  try {
    const idleRssKb = readStatusKb(svc.pid, 'VmRSS');
    // Uploads go to a ready service, as behind any load balancer: a fresh process's first provider check (which
    // the fake answers after its full latency, as it does a transcription) is not part of a job's time.
    await waitForReady(svc.url, 30_000);
    const rss = sampleRss(svc.pid);
    const disk = o.watchDisk ? sampleDir(svc.dataDir) : null;
    const t0 = Date.now();
    const up = await curlUpload(`${svc.url}/v1/jobs`, o.audio.path);
    const acceptedMs = Date.now() - t0;
    const cpu0 = readCpuMs(svc.pid);
    if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body).slice(0, 500)}`);
    const id = String(up.body.id);
    const job = await waitForJob(svc.url, id, o.timeoutMs);
    const endMs = job.completed_at ? Date.parse(job.completed_at) : Date.now();
    const peaks = rss.stop();
    const diskPeakBytes = disk ? disk.stop() : null;
    const hwmKb = svc.hwmKb();
    const cpu1 = readCpuMs(svc.pid);
    const cpuMs =
      cpu0 && cpu1 ? { ownMs: cpu1.ownMs - cpu0.ownMs, childrenMs: cpu1.childrenMs - cpu0.childrenMs } : null;

    const sent = o.fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const lines = svc.logLines();
    const validated = logged(lines, 'validation passed')[0];
    const checks = Array.isArray(validated?.checks) ? (validated.checks as Array<{ ms?: number }>) : null;
    const accepted = msOf(logged(lines, 'job accepted')[0]);
    const slicing = msOf(logged(lines, 'slicing')[0]);
    return {
      status: job.status,
      errorCode: job.error?.code ?? null,
      wallMs: endMs - t0,
      acceptedMs,
      firstRequestMs: sent[0] ? sent[0].time - t0 : null,
      lastRequestMs: sent.length > 0 ? Math.max(...sent.map((r) => r.time)) - t0 : null,
      chunks: job.progress.chunks_total,
      requests: sent.length,
      providerMs: providerMsOf(sent),
      validationMs: checks ? checks.reduce((s, c) => s + (c.ms ?? 0), 0) : null,
      planMs: accepted !== null && slicing !== null ? slicing - accepted : null,
      idleRssKb,
      hwmKb,
      cpuMs,
      treePeakKb: peaks.treeKb,
      diskPeakBytes,
      logFile: svc.logFile,
    };
  } finally {
    await svc.stop();
  }
}
