import path from 'node:path';
import { FAKE_OPENAI_KEY, startFakeOpenAI } from '../../test/fake-openai/server.ts';
import type { NaiveResult } from '../baseline-naive.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { run, sampleRss } from '../lib/proc.ts';
import { REPO_ROOT } from '../lib/service.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { kbToMiB, median, MetricSet } from '../lib/stats.ts';
import type { PipelineSettings } from './pipeline.ts';

const CONCURRENCY = 3;
const MODES = ['reencode', 'copy'] as const;

interface NaiveRun extends NaiveResult {
  mode: (typeof MODES)[number];
  treePeakKb: number;
}

async function runNaiveProcess(ctx: BenchContext, args: string[], mode: NaiveRun['mode']): Promise<NaiveRun> {
  const rss: { sampler?: ReturnType<typeof sampleRss> } = {};
  const r = await run(
    process.execPath,
    [path.join(REPO_ROOT, 'bench', 'baseline-naive.ts'), ...args, '--mode', mode, '--work-dir', ctx.workDir],
    {
      cwd: REPO_ROOT,
      onSpawn: (pid) => {
        rss.sampler = sampleRss(pid);
      },
    },
  );
  const peaks = rss.sampler?.stop() ?? { treeKb: 0 };
  if (r.code !== 0) throw new Error(`baseline-naive (${mode}) failed: ${r.stderr.slice(-2000)}`);
  const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as NaiveResult;
  return { ...result, mode, treePeakKb: peaks.treeKb };
}

/**
 * The naive script on the same file, chunk length, fake latency and concurrency as the pipeline's c=3 runs;
 * those runs are reused when the pipeline scenario ran, else the service is run here too.
 */
export async function baselineScenario(
  ctx: BenchContext,
  audio: AudioFile,
  settings: PipelineSettings,
  serviceRuns: ServiceJobRun[] | undefined,
): Promise<ScenarioOutput> {
  const m = new MetricSet('baseline');
  const fake = await startFakeOpenAI({ latencyMs: settings.latencyMs });
  const naive: NaiveRun[] = [];
  const ours: ServiceJobRun[] = serviceRuns ? [...serviceRuns] : [];
  try {
    const args = [
      '--input',
      audio.path,
      '--base-url',
      fake.url,
      '--api-key',
      FAKE_OPENAI_KEY,
      '--chunk-seconds',
      String(settings.chunkSeconds),
      '--concurrency',
      String(CONCURRENCY),
    ];
    for (let i = 0; i < ctx.runs; i++) {
      for (const mode of MODES) {
        ctx.note(`baseline run ${i + 1}/${ctx.runs}: naive ${mode}`);
        fake.reset();
        naive.push(await runNaiveProcess(ctx, args, mode));
      }
      if (!serviceRuns) {
        ctx.note(`baseline run ${i + 1}/${ctx.runs}: service c=${CONCURRENCY}`);
        ours.push(
          await runServiceJob({
            ctx,
            fake,
            audio,
            name: 'baseline-service',
            timeoutMs: 20 * 60_000,
            env: fakeProviderEnv(fake, {
              TRANSCRIBE_CONCURRENCY: String(CONCURRENCY),
              CHUNK_SECONDS: String(settings.chunkSeconds),
            }),
          }),
        );
      }
    }
  } finally {
    await fake.close();
  }

  const ourWall = median(ours.map((r) => r.wallMs));
  const ourHwm = median(ours.map((r) => r.hwmKb ?? Number.NaN));
  const ourTree = median(ours.map((r) => r.treePeakKb));
  for (const mode of MODES) {
    for (const r of naive.filter((n) => n.mode === mode)) {
      m.add(`naive ${mode}: wall time`, 's', r.wallMs / 1000);
      m.add(`naive ${mode}: cutting (before 1st request)`, 's', r.cutMs / 1000);
      m.add(`naive ${mode}: peak RSS (VmHWM)`, 'MiB', kbToMiB(r.hwmKb));
      m.add(`naive ${mode}: peak RSS +ffmpeg (polled)`, 'MiB', kbToMiB(r.treePeakKb));
      // Against the median of our runs: the two sides are not paired run by run.
      m.add(`ours/naive ${mode}: wall time`, 'x', ourWall / r.wallMs, '< 1');
      if (r.hwmKb) m.add(`ours/naive ${mode}: peak RSS (VmHWM)`, 'x', ourHwm / r.hwmKb);
      if (r.treePeakKb) m.add(`ours/naive ${mode}: peak RSS +ffmpeg`, 'x', ourTree / r.treePeakKb);
    }
  }
  for (const r of ours) {
    m.add(`ours c=${CONCURRENCY}: wall time (incl. HTTP upload)`, 's', r.wallMs / 1000);
    m.add(`ours c=${CONCURRENCY}: peak RSS (VmHWM)`, 'MiB', kbToMiB(r.hwmKb));
  }
  return {
    metrics: m.list(),
    details: {
      concurrency: CONCURRENCY,
      settings,
      reusedPipelineRuns: serviceRuns !== undefined,
      naive,
      ours: serviceRuns ? 'see pipeline c3' : ours,
    },
  };
}
