import { startFakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { fakeOptionsOf, fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { addFakeAloneMetrics, fakeAloneSpeedup, fakeAloneWithChunkOf, type FakeAlone } from '../lib/fake-alone.ts';
import { logged, readLogLines } from '../lib/service.ts';
import { runServiceJob, type ServiceJobRun } from '../lib/service-job.ts';
import { MetricSet } from '../lib/stats.ts';
import { idealMs } from './pipeline.ts';

/** Full: the case (2 h, 300 s chunks, 300 ms a request); quick: 20 min in 60 s chunks. */
export function continuousSettings(quick: boolean): { latencyMs: number; chunkSeconds: number } {
  return quick ? { latencyMs: 300, chunkSeconds: 60 } : { latencyMs: 300, chunkSeconds: 300 };
}

const CONCURRENCIES = [1, 3] as const;

/**
 * Continuous sound (no pause anywhere, so every cut is hard and the job carries overlap) through the real service
 * at concurrency 1 and 3 against a fast fake provider: whether slicing and planning keep up with the provider.
 * "Processing" is the 202 to completed_at (the upload and its validation are the same at any concurrency);
 * speedup is c=1 over c=3 of it, paired by run; the ideal schedule is `pipeline`'s.
 */
export async function continuousScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const settings = continuousSettings(ctx.quick);
  const m = new MetricSet('continuous');
  const fakeOptions = fakeOptionsOf(ctx, settings.latencyMs);
  const fake = await startFakeOpenAI(fakeOptions);
  const runs = new Map<number, ServiceJobRun[]>(CONCURRENCIES.map((c) => [c, []]));
  const plans: Array<Record<string, unknown>> = [];
  let alone: FakeAlone = { answers: new Map(), cpuPerRequest: null };
  try {
    for (let i = 0; i < ctx.runs; i++) {
      for (const c of CONCURRENCIES) {
        ctx.note(`continuous run ${i + 1}/${ctx.runs}: concurrency ${c}`);
        const r = await runServiceJob({
          ctx,
          fake,
          audio,
          name: `continuous-c${c}`,
          timeoutMs: 20 * 60_000,
          env: fakeProviderEnv(fake, {
            TRANSCRIBE_CONCURRENCY: String(c),
            CHUNK_SECONDS: String(settings.chunkSeconds),
          }),
        });
        if (r.status !== 'completed')
          throw new Error(`continuous c=${c}: job ${r.status} (${r.errorCode}); log ${r.logFile}`);
        runs.get(c)?.push(r);
        const slicing = logged(readLogLines(r.logFile), 'slicing')[0];
        if (slicing) plans.push({ c, hardCuts: slicing.hardCuts, mode: slicing.chunkMode, overlapS: slicing.overlapS });
      }
    }
    ctx.note('continuous: the fake provider alone');
    alone = await fakeAloneWithChunkOf(fakeOptions, audio, ctx.workDir, settings.chunkSeconds, CONCURRENCIES);
  } finally {
    await fake.close();
  }

  const base = runs.get(1) ?? [];
  for (const c of CONCURRENCIES) {
    (runs.get(c) ?? []).forEach((r, i) => {
      const processing = r.wallMs - r.acceptedMs;
      m.add(`c=${c} processing (202->completed)`, 's', processing / 1000);
      m.add(`c=${c} wall time upload->completed`, 's', r.wallMs / 1000);
      const b = base[i];
      if (c !== 1 && b)
        m.add(`c=${c} speedup vs c=1 (processing)`, 'x', (b.wallMs - b.acceptedMs) / processing, '>= 2.7');
      const atAlone = b && c !== 1 ? fakeAloneSpeedup(alone, b, r, c, true) : null;
      if (atAlone !== null)
        m.add(`c=${c} speedup at the fake-alone schedule (1; ${c} at once), processing`, 'x', atAlone);
      const ideal = idealMs(r, c, settings.latencyMs);
      if (ideal !== null) m.add(`c=${c} ratio to ideal schedule`, 'x', r.wallMs / ideal, '<= 1.2');
      const nominal = idealMs(r, c, settings.latencyMs, true);
      if (nominal !== null) m.add(`c=${c} ratio to ideal at the set latency alone`, 'x', r.wallMs / nominal);
      if (r.firstRequestMs !== null)
        m.add(`c=${c} 202->first provider request`, 's', (r.firstRequestMs - r.acceptedMs) / 1000);
      // CPU hardly moves with the machine's load, where wall times do: the service's own work per job.
      if (r.cpuMs) {
        m.add(`c=${c} service CPU 202->completed, node`, 's', r.cpuMs.ownMs / 1000);
        m.add(`c=${c} service CPU 202->completed, its ffmpeg`, 's', r.cpuMs.childrenMs / 1000);
      }
    });
  }
  addFakeAloneMetrics(m, alone);
  for (const r of [...runs.values()].flat()) {
    m.add('chunks per job', 'n', r.chunks);
    m.add("fake provider's own time per request (median)", 's', r.providerMs === null ? null : r.providerMs / 1000);
    m.add('accepted->slicing: queue + plan (log)', 's', r.planMs === null ? null : r.planMs / 1000);
  }
  // Every chunk copied with its lead-in (mode copy, overlap > 0), not the whole file re-encoded to WAV.
  const copied = plans.filter((p) => p.mode === 'copy' && Number(p.overlapS) > 0).length;
  m.add('jobs sliced by stream copy with overlap', 'share', plans.length > 0 ? copied / plans.length : null, '1');

  return {
    metrics: m.list(),
    details: {
      settings,
      audio: { path: audio.path, durationS: audio.durationS, bytes: audio.bytes },
      plans,
      runs: Object.fromEntries([...runs].map(([c, r]) => [`c${c}`, r])),
    },
  };
}
