import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { kbToMiB, MetricSet } from '../lib/stats.ts';

/** Fast enough that the job is bound by ingest and slicing, which is what this scenario is about. */
const LATENCY_MS = 200;

/**
 * The large WAV as a real job with the service's default chunking and concurrency: peak RSS of the service
 * while it receives and processes it, and the high water mark of DATA_DIR as a multiple of the upload.
 * Once per bench run (it is the longest single job); --runs does not repeat it.
 */
export async function memoryScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('memory');
  const fake = await startFakeOpenAI({ latencyMs: LATENCY_MS });
  let r: ServiceJobRun;
  try {
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
      audio: { path: audio.path, bytes: audio.bytes, durationS: audio.durationS },
      run: r,
    },
  };
}
