import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { startFakeOpenAI, type FakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from '../lib/audio.ts';
import { startChildServer } from '../lib/child-server.ts';
import { fakeProviderEnv, type BenchContext, type ScenarioOutput } from '../lib/context.ts';
import { curlUpload } from '../lib/http.ts';
import { runOk, sampleRss } from '../lib/proc.ts';
import { logged, REPO_ROOT, startService } from '../lib/service.ts';
import { kbToMiB, MetricSet } from '../lib/stats.ts';

interface UploadRun {
  serviceMs: number;
  validationMs: number | null;
  serviceHwmKb: number | null;
  serviceTreeKb: number;
  sinkMs: number;
  sinkHwmKb: number | null;
  cpMs: number;
}

async function dryRunThroughService(ctx: BenchContext, fake: FakeOpenAI, audio: AudioFile) {
  // A fresh process each time, so its peak RSS belongs to this upload alone.
  const svc = await startService({
    env: fakeProviderEnv(fake),
    workDir: ctx.workDir,
    name: 'upload',
    keep: ctx.keep,
    entry: ctx.serviceEntry,
  });
  try {
    const rss = sampleRss(svc.pid);
    const up = await curlUpload(`${svc.url}/v1/jobs`, audio.path, { dry_run: 'true' });
    const peaks = rss.stop();
    if (up.status !== 200) throw new Error(`dry run answered ${up.status}: ${JSON.stringify(up.body).slice(0, 500)}`);
    const checks = logged(svc.logLines(), 'validation passed')[0]?.checks;
    const validationMs = Array.isArray(checks)
      ? (checks as Array<{ ms?: number }>).reduce((s, c) => s + (c.ms ?? 0), 0)
      : null;
    return { ms: up.ms, validationMs, hwmKb: svc.hwmKb(), treeKb: peaks.treeKb };
  } finally {
    await svc.stop();
  }
}

async function throughSink(audio: AudioFile, sinkDir: string) {
  const sink = await startChildServer(path.join(REPO_ROOT, 'bench', 'sink-server.ts'), { SINK_DIR: sinkDir });
  try {
    const up = await curlUpload(sink.url, audio.path, { dry_run: 'true' });
    if (up.status !== 200) throw new Error(`sink answered ${up.status}`);
    return { ms: up.ms, hwmKb: sink.hwmKb() };
  } finally {
    await sink.stop();
  }
}

/**
 * Ingest: the file through POST /v1/jobs with dry_run=true (upload, probe, decode check, estimate; nothing
 * queued) against the same curl command into a bare node:http sink that writes the body to a file. Both
 * sides pay the same client, loopback socket and page-cache writes, so the ratio is the service's own
 * overhead; `cp` of the file is printed as the floor of the disk alone (no socket).
 */
export async function uploadScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('upload');
  const runs: UploadRun[] = [];
  const mb = audio.bytes / 1e6;
  const sinkDir = path.join(ctx.workDir, 'sink');
  await mkdir(sinkDir, { recursive: true });
  const fake = await startFakeOpenAI();
  try {
    for (let i = 0; i < ctx.runs; i++) {
      ctx.note(`upload run ${i + 1}/${ctx.runs}: ${(audio.bytes / 2 ** 20).toFixed(0)} MiB WAV`);
      const ours = await dryRunThroughService(ctx, fake, audio);
      const sink = await throughSink(audio, sinkDir);
      const copy = path.join(sinkDir, 'cp-copy');
      const cp = await runOk('cp', [audio.path, copy]);
      await rm(copy, { force: true });
      runs.push({
        serviceMs: ours.ms,
        validationMs: ours.validationMs,
        serviceHwmKb: ours.hwmKb,
        serviceTreeKb: ours.treeKb,
        sinkMs: sink.ms,
        sinkHwmKb: sink.hwmKb,
        cpMs: cp.ms,
      });
    }
  } finally {
    await fake.close();
    await rm(sinkDir, { recursive: true, force: true });
  }

  for (const r of runs) {
    m.add('POST /v1/jobs dry_run: total', 's', r.serviceMs / 1000);
    m.add('  of which validation (probe, decode; log)', 's', r.validationMs === null ? null : r.validationMs / 1000);
    m.add('POST /v1/jobs dry_run: throughput', 'MB/s', mb / (r.serviceMs / 1000));
    m.add('curl -> bare http sink -> file', 's', r.sinkMs / 1000);
    m.add('cp (disk floor, no socket)', 's', r.cpMs / 1000);
    m.add('ratio sink/ours (ingest + validation)', 'x', r.sinkMs / r.serviceMs, '>= 0.7');
    if (r.validationMs !== null)
      m.add('ratio sink/ours (ingest only)', 'x', r.sinkMs / (r.serviceMs - r.validationMs), '>= 0.7');
    m.add('peak RSS service (VmHWM)', 'MiB', kbToMiB(r.serviceHwmKb), '< 150');
    m.add('peak RSS service+ffmpeg (polled)', 'MiB', kbToMiB(r.serviceTreeKb));
    m.add('peak RSS bare sink (VmHWM)', 'MiB', kbToMiB(r.sinkHwmKb));
  }
  return {
    metrics: m.list(),
    details: { audio: { path: audio.path, bytes: audio.bytes, durationS: audio.durationS }, runs },
  };
}
