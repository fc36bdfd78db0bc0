import { setTimeout as sleep } from 'node:timers/promises';
import { CLIPS } from '../../test/fixtures/speech.ts';
import { wer } from '../../test/support/wer.ts';
import { parsePocketsphinxOutput } from '../../src/transcribe/providers/local/provider.ts';
import type { AudioFile } from '../lib/audio.ts';
import type { BenchContext, ScenarioOutput } from '../lib/context.ts';
import { curlUpload, getJob } from '../lib/http.ts';
import { run } from '../lib/proc.ts';
import { startService } from '../lib/service.ts';
import { MetricSet } from '../lib/stats.ts';

/** The fixture's ~32 s of speech 12 times over: ~6.4 min, what a new user tries first (quick: 4, ~2.1 min). */
export function speechLoops(quick: boolean): number {
  return quick ? 4 : 12;
}

const MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';

/** One pocketsphinx run over the whole file, as the local provider runs it on a chunk. */
async function singleRun(file: string): Promise<{ ms: number; text: string }> {
  const args = ['-infile', file, '-hmm', `${MODEL_DIR}/en-us`, '-lm', `${MODEL_DIR}/en-us.lm.bin`];
  const r = await run('pocketsphinx_continuous', [...args, '-dict', `${MODEL_DIR}/cmudict-en-us.dict`, '-time', 'yes']);
  if (r.code !== 0) throw new Error(`pocketsphinx failed (${r.code}): ${r.stderr.slice(-500)}`);
  return {
    ms: r.ms,
    text: parsePocketsphinxOutput(r.stdout)
      .segments.map((s) => s.text)
      .join(' '),
  };
}

interface JobRun {
  wallMs: number;
  chunks: number;
  /** Longest time from the 202 (or from one change of progress) to the next change, or to completion. */
  longestStillMs: number;
  text: string;
}

/** The job through a fresh service on the local engine with every chunk setting left to the engine's defaults. */
async function jobRun(ctx: BenchContext, audio: AudioFile, name: string): Promise<JobRun> {
  const svc = await startService({
    env: { TRANSCRIBE_PROVIDER: 'local', LOG_LEVEL: 'info' },
    workDir: ctx.workDir,
    name,
    keep: ctx.keep,
    entry: ctx.serviceEntry,
  });
  try {
    const t0 = Date.now();
    const up = await curlUpload(`${svc.url}/v1/jobs`, audio.path, { language: 'en' });
    if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body).slice(0, 300)}`);
    const id = String(up.body.id);
    let lastChange = Date.now();
    let last = '';
    let longestStillMs = 0;
    for (;;) {
      const job = await getJob(svc.url, id);
      const now = Date.now();
      const state = `${job.progress.percent}/${job.progress.chunks_done}`;
      if (state !== last || job.status !== 'processing') {
        if (last !== '' || job.progress.percent > 0) longestStillMs = Math.max(longestStillMs, now - lastChange);
        lastChange = now;
        last = state;
      }
      if (['completed', 'failed', 'cancelled'].includes(job.status)) {
        if (job.status !== 'completed') throw new Error(`local job ${job.status}: ${JSON.stringify(job.error)}`);
        const endMs = job.completed_at ? Date.parse(job.completed_at) : now;
        const res = await fetch(`${svc.url}/v1/jobs/${id}/transcript?format=json`);
        const body = (await res.json()) as { text: string };
        return { wallMs: endMs - t0, chunks: job.progress.chunks_total, longestStillMs, text: body.text };
      }
      if (now - t0 > 15 * 60_000) throw new Error(`local job still ${job.status} after 15 min`);
      await sleep(200);
    }
  } finally {
    await svc.stop();
  }
}

/**
 * ~6.4 min of speech on the local engine with all defaults (what a new user tries first) against one pocketsphinx
 * run on the whole file: wall time ratio, how long progress stands still at most, and the WER of both against
 * the clips' reference transcripts.
 */
export async function localDefaultScenario(ctx: BenchContext, audio: AudioFile): Promise<ScenarioOutput> {
  const m = new MetricSet('local-default');
  const loops = speechLoops(ctx.quick);
  const ref = Array.from({ length: loops }, () => CLIPS.map((c) => c.text).join(' ')).join(' ');
  const runs: Array<{ single: { ms: number; wer: number }; job: Omit<JobRun, 'text'> & { wer: number } }> = [];
  for (let i = 0; i < ctx.runs; i++) {
    ctx.note(`local-default run ${i + 1}/${ctx.runs}: one pocketsphinx run on the whole file`);
    const single = await singleRun(audio.path);
    ctx.note(`local-default run ${i + 1}/${ctx.runs}: the service, local engine defaults`);
    const job = await jobRun(ctx, audio, `local-default-${i + 1}`);
    const singleWer = wer(single.text, ref);
    const jobWer = wer(job.text, ref);
    m.add('job wall time upload->completed', 's', job.wallMs / 1000);
    m.add('one pocketsphinx run on the whole file', 's', single.ms / 1000);
    m.add('job / single run', 'x', job.wallMs / single.ms, '<= 0.6');
    m.add('chunks per job', 'n', job.chunks);
    m.add('longest wait between progress changes', 's', job.longestStillMs / 1000, '<= 15');
    m.add('WER single run', '%', singleWer * 100);
    m.add('WER job', '%', jobWer * 100);
    m.add('WER job - single run', 'points', (jobWer - singleWer) * 100, '~0');
    const { text: _text, ...jobFigures } = job;
    runs.push({ single: { ms: single.ms, wer: singleWer }, job: { ...jobFigures, wer: jobWer } });
  }
  return {
    metrics: m.list(),
    details: { audio: { path: audio.path, durationS: audio.durationS, bytes: audio.bytes }, runs },
  };
}
