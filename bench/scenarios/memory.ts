import { startFakeOpenAI, type FakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { readStatusKb } from '../lib/proc.ts';
import { startService } from '../lib/service.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { kbToMiB, MetricSet } from '../lib/stats.ts';

/** Fast enough that the job is bound by ingest and slicing, which is what this scenario is about. */
const LATENCY_MS = 200;
/** Starts measured for the idle figure: one start varies by a few MiB (what the kernel maps in, GC timing). */
const IDLE_STARTS = { full: 10, quick: 3 };

/**
 * VmRSS of a fresh service once /health/live answers, nothing asked of it yet: what it costs to keep running.
 * The provider is the fake OpenAI server, as in every other case (the default engine).
 */
async function idleRssKb(ctx: BenchContext, fake: FakeOpenAI): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < (ctx.quick ? IDLE_STARTS.quick : IDLE_STARTS.full); i++) {
    const svc = await startService({
      env: fakeProviderEnv(fake),
      workDir: ctx.workDir,
      name: 'idle',
      entry: ctx.serviceEntry,
    });
    try {
      const kb = readStatusKb(svc.pid, 'VmRSS');
      if (kb !== null) out.push(kb);
    } finally {
      await svc.stop();
    }
  }
  return out;
}

/**
 * Idle RSS over several fresh starts, then the large WAV as a real job with the service's default chunking and concurrency: peak RSS of the service
 * while it receives and processes it, and the high water mark of DATA_DIR as a multiple of the upload.
 * Once per bench run (it is the longest single job); --runs does not repeat it.
 */
export async function memoryScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('memory');
  const fake = await startFakeOpenAI({ latencyMs: LATENCY_MS });
  let r: ServiceJobRun;
  let idle: number[];
  try {
    ctx.note('memory: idle RSS after start');
    idle = await idleRssKb(ctx, fake);
    ctx.note(`memory: full job of the ${(audio.bytes / 2 ** 20).toFixed(0)} MiB WAV`);
    r = await runServiceJob({
      ctx,
      fake,
      audio,
      name: 'memory',
      timeoutMs: 30 * 60_000,
      watchDisk: true,
      env: fakeProviderEnv(fake),
    });
  } finally {
    await fake.close();
  }
  for (const kb of idle) m.add('idle RSS service after start (VmRSS)', 'MiB', kbToMiB(kb), '< 80');
  if (r.status !== 'completed') throw new Error(`memory job ${r.status} (${r.errorCode}); log ${r.logFile}`);
  m.add('WAV job: wall time upload->completed', 's', r.wallMs / 1000);
  m.add('WAV job: upload+validation (202)', 's', r.acceptedMs / 1000);
  m.add('WAV job: chunks', 'n', r.chunks);
  m.add('WAV job: peak RSS service (VmHWM)', 'MiB', kbToMiB(r.hwmKb), '< 150');
  m.add('WAV job: peak RSS service+ffmpeg (polled)', 'MiB', kbToMiB(r.treePeakKb));
  if (r.diskPeakBytes !== null)
    m.add('WAV job: DATA_DIR high water / upload size', 'x', r.diskPeakBytes / audio.bytes, '< 1.3');
  return {
    metrics: m.list(),
    details: {
      latencyMs: LATENCY_MS,
      idleRssKb: idle,
      audio: { path: audio.path, bytes: audio.bytes, durationS: audio.durationS },
      run: r,
    },
  };
}
