import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeOptionsOf, fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { kbToMiB, MetricSet } from '../lib/stats.ts';
import { addFakeAloneMetrics, fakeAloneSpeedup, fakeAloneWithChunkOf, type FakeAlone } from '../lib/fake-alone.ts';

export interface PipelineSettings {
  latencyMs: number;
  chunkSeconds: number;
  concurrencies: number[];
}

export function pipelineSettings(quick: boolean): PipelineSettings {
  // Quick: 20 min in 60 s chunks keeps the chunk count (20) close to the full run's 24 at a fraction of the time.
  return quick
    ? { latencyMs: 500, chunkSeconds: 60, concurrencies: [1, 3, 8] }
    : { latencyMs: 1500, chunkSeconds: 300, concurrencies: [1, 3, 8] };
}

export interface PipelinePoint {
  concurrency: number;
  wallS: number[];
  idealS: number[];
}

export interface PipelineOutput extends ScenarioOutput {
  /** Per concurrency, for the chart and for the baseline's ratios. */
  points: PipelinePoint[];
  runsByConcurrency: Map<number, ServiceJobRun[]>;
  settings: PipelineSettings;
}

/**
 * The ideal schedule: nothing but the wait for the first request and `ceil(chunks / c)` provider round trips, each
 * as long as the fake provider itself took to answer one (`providerMs`: the latency it is set to plus its own
 * parsing, hashing and ffprobe of the file, ~0.1 s for a 5 MB chunk, which no service can avoid); `nominal` counts
 * the set latency alone, as this bench did before (too strict by the fake's own work per round).
 */
export function idealMs(run: ServiceJobRun, concurrency: number, latencyMs: number, nominal = false): number | null {
  if (run.firstRequestMs === null) return null;
  const perRequest = nominal ? latencyMs : Math.max(latencyMs, run.providerMs ?? latencyMs);
  return run.firstRequestMs + Math.ceil(run.chunks / concurrency) * perRequest;
}

export async function pipelineScenario(ctx: BenchContext, audio: AudioFile): Promise<PipelineOutput> {
  const settings = pipelineSettings(ctx.quick);
  const m = new MetricSet('pipeline');
  const fakeOptions = fakeOptionsOf(ctx, settings.latencyMs);
  const fake = await startFakeOpenAI(fakeOptions);
  const runsByConcurrency = new Map<number, ServiceJobRun[]>(settings.concurrencies.map((c) => [c, []]));
  let alone: FakeAlone = { answers: new Map(), cpuPerRequest: null };
  try {
    for (let i = 0; i < ctx.runs; i++) {
      for (const c of settings.concurrencies) {
        ctx.note(`pipeline run ${i + 1}/${ctx.runs}: concurrency ${c}`);
        const r = await runServiceJob({
          ctx,
          fake,
          audio,
          name: `pipeline-c${c}`,
          timeoutMs: 20 * 60_000,
          env: fakeProviderEnv(fake, {
            TRANSCRIBE_CONCURRENCY: String(c),
            CHUNK_SECONDS: String(settings.chunkSeconds),
          }),
        });
        if (r.status !== 'completed')
          throw new Error(`pipeline c=${c}: job ${r.status} (${r.errorCode}); log ${r.logFile}`);
        runsByConcurrency.get(c)?.push(r);
      }
    }
    ctx.note('pipeline: the fake provider alone');
    alone = await fakeAloneWithChunkOf(fakeOptions, audio, ctx.workDir, settings.chunkSeconds, settings.concurrencies);
  } finally {
    await fake.close();
  }

  const base = runsByConcurrency.get(1) ?? [];
  const points: PipelinePoint[] = [];
  for (const c of settings.concurrencies) {
    const runs = runsByConcurrency.get(c) ?? [];
    const wallS: number[] = [];
    const idealS: number[] = [];
    runs.forEach((r, i) => {
      const ideal = idealMs(r, c, settings.latencyMs);
      wallS.push(r.wallMs / 1000);
      if (ideal !== null) idealS.push(ideal / 1000);
      m.add(`c=${c} wall time upload->completed`, 's', r.wallMs / 1000);
      const b = base[i];
      // Issue 19 asks 2.85 of c=3 (0.95 c); c=8 keeps 0.9 c.
      const aim = c === 3 ? '>= 2.85' : `>= ${(0.9 * c).toFixed(1)}`;
      if (c !== 1 && b) m.add(`c=${c} speedup vs c=1`, 'x', b.wallMs / r.wallMs, aim);
      if (ideal !== null) m.add(`c=${c} ratio to ideal schedule`, 'x', r.wallMs / ideal, '<= 1.15');
      const nominal = idealMs(r, c, settings.latencyMs, true);
      if (nominal !== null) m.add(`c=${c} ratio to ideal at the set latency alone`, 'x', r.wallMs / nominal);
      if (c !== 1 && b) {
        // The upload is the same at any concurrency: this is the speedup of what concurrency can change.
        m.add(`c=${c} speedup vs c=1 (202->completed)`, 'x', (b.wallMs - b.acceptedMs) / (r.wallMs - r.acceptedMs));
        const best = idealMs(b, 1, settings.latencyMs);
        // What the ideal schedules allow for the wall-time speedup, given this run's wait for the first request.
        if (best !== null && ideal !== null) m.add(`c=${c} speedup the ideal schedules allow`, 'x', best / ideal);
        const atAlone = fakeAloneSpeedup(alone, b, r, c);
        if (atAlone !== null) m.add(`c=${c} speedup at the fake-alone schedule (1; ${c} at once)`, 'x', atAlone);
      }
      if (r.firstRequestMs !== null) m.add(`c=${c} time to first provider request`, 's', r.firstRequestMs / 1000);
      if (r.lastRequestMs !== null) m.add(`c=${c} time to last provider request`, 's', r.lastRequestMs / 1000);
      m.add(`c=${c} upload+validation (202)`, 's', r.acceptedMs / 1000);
      // Issue 19's memory aim is set for c=3, the default concurrency.
      m.add(`c=${c} peak RSS service (VmHWM)`, 'MiB', kbToMiB(r.hwmKb), c === 3 ? '< 120' : undefined);
      m.add(`c=${c} peak RSS service+ffmpeg (polled)`, 'MiB', kbToMiB(r.treePeakKb));
    });
    points.push({ concurrency: c, wallS, idealS });
  }
  addFakeAloneMetrics(m, alone);
  for (const r of [...runsByConcurrency.values()].flat()) {
    m.add('chunks per job', 'n', r.chunks);
    m.add("fake provider's own time per request (median)", 's', r.providerMs === null ? null : r.providerMs / 1000);
    m.add('provider requests per job', 'n', r.requests);
    m.add('validation inside the 202 (log)', 's', r.validationMs === null ? null : r.validationMs / 1000);
    m.add('accepted->slicing: queue + silence scan (log)', 's', r.planMs === null ? null : r.planMs / 1000);
    m.add('idle RSS service after start', 'MiB', kbToMiB(r.idleRssKb));
  }

  return {
    metrics: m.list(),
    points,
    runsByConcurrency,
    settings,
    details: {
      settings,
      audio: { path: audio.path, durationS: audio.durationS, bytes: audio.bytes },
      runs: Object.fromEntries([...runsByConcurrency].map(([c, runs]) => [`c${c}`, runs])),
    },
  };
}
