import { LOCAL_OVERLAP_S } from '../../src/transcribe/providers/local/models.ts';
import {
  continuousSpeechFixture,
  OTHER_ROUNDS,
  transcribeWhole,
  twoVoicesFixture,
  type ContinuousFixture,
} from '../../test/fixtures/continuous.ts';
import { wer } from '../../test/support/wer.ts';
import type { BenchContext, ScenarioOutput } from '../lib/context.ts';
import { curlUpload, waitForJob } from '../lib/http.ts';
import { logged, startService } from '../lib/service.ts';
import { MetricSet } from '../lib/stats.ts';

/** Every cut of a 6 s chunk in continuous speech splits a word. */
const CHUNK_SECONDS = 6;

interface JobRun {
  overlapS: number;
  wer: number;
  wallMs: number;
  chunks: number;
  /** The overlap the job was cut with (its `slicing` log line): 0 when the service gave it none. */
  appliedOverlapS: number | null;
  text: string;
}

/** One job of the local engine on a fresh service: upload to completed, the transcript's WER. */
async function runJob(ctx: BenchContext, fx: ContinuousFixture, name: string, overlapS: number): Promise<JobRun> {
  const svc = await startService({
    env: {
      TRANSCRIBE_PROVIDER: 'local',
      CHUNK_SECONDS: String(CHUNK_SECONDS),
      CHUNK_OVERLAP_SECONDS: String(overlapS),
    },
    workDir: ctx.workDir,
    name,
    keep: ctx.keep,
    entry: ctx.serviceEntry,
  });
  try {
    const t0 = Date.now();
    const up = await curlUpload(`${svc.url}/v1/jobs`, fx.wav, { language: 'en' });
    if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body).slice(0, 500)}`);
    const job = await waitForJob(svc.url, String(up.body.id), 10 * 60_000);
    if (job.status !== 'completed') throw new Error(`${name} job ${job.status}; log ${svc.logFile}`);
    const wallMs = (job.completed_at ? Date.parse(job.completed_at) : Date.now()) - t0;
    const res = await fetch(`${svc.url}/v1/jobs/${job.id}/transcript?format=txt`);
    const text = await res.text();
    const slicing = logged(svc.logLines(), 'slicing')[0];
    const applied = typeof slicing?.overlapS === 'number' ? slicing.overlapS : null;
    return {
      overlapS,
      wer: wer(text, fx.reference),
      wallMs,
      chunks: job.progress.chunks_total,
      appliedOverlapS: applied,
      text,
    };
  } finally {
    await svc.stop();
  }
}

/** One pocketsphinx run on the whole file: the WER the chunked job is held to. */
async function wholeFile(fx: ContinuousFixture): Promise<{ wer: number; ms: number; text: string }> {
  const t0 = Date.now();
  const text = await transcribeWhole(fx);
  return { wer: wer(text, fx.reference), ms: Date.now() - t0, text };
}

/**
 * BENCH_SEAM_OVERLAPS (e.g. "1,2,3,4,5") sweeps the overlap instead of using the local engine's own value
 * (LOCAL_OVERLAP_S); each value is one more row per case.
 */
function overlapsToRun(): number[] {
  const raw = process.env.BENCH_SEAM_OVERLAPS;
  if (!raw) return [LOCAL_OVERLAP_S];
  return raw.split(',').map((s) => {
    const v = Number(s.trim());
    if (!Number.isFinite(v) || v < 0) throw new Error(`BENCH_SEAM_OVERLAPS: not a number of seconds: ${s}`);
    return v;
  });
}

/**
 * The seams between chunks, on speech with no pause to cut in, with the local engine and 6 s chunks (a split
 * word at every cut): WER of the job against one pocketsphinx run on the whole file (aim: within 2 points), and
 * of blind cuts without overlap. Cases: (a) continuous speech, LibriVox clips with every pause over 0.1 s
 * removed, in three orders (one clip moves by 2-3 points with where its cuts fall: the aim is held by their mean);
 * (b) two espeak-ng voices taking turns without a pause, both ways round (which voice speaks first moves the
 * whole-file run by ~10 points, its one live cepstral mean blending both voices, while each chunk starts from its
 * own: the aim is held by the mean of both orders, as the continuous clips are by theirs). pocketsphinx is
 * deterministic, so the WERs repeat exactly run after run; the wall times vary. bench/seam-yardstick.ts measures more cut offsets without the service.
 */
export async function seamsScenario(ctx: BenchContext): Promise<ScenarioOutput> {
  const m = new MetricSet('seams');
  const details: Record<string, unknown> = { chunkSeconds: CHUNK_SECONDS };
  const cases = [
    { key: 'continuous speech', fx: continuousSpeechFixture() },
    ...OTHER_ROUNDS.map((rounds, i) => ({ key: `continuous speech ${'BC'[i]}`, fx: continuousSpeechFixture(rounds) })),
    { key: 'two voices', fx: twoVoicesFixture() },
    { key: 'two voices swapped', fx: twoVoicesFixture(true) },
  ];
  /** Per overlap and group (the continuous clips, the two voices' orders): each WER minus its whole-file run. */
  const deltas = { speech: new Map<number, number[]>(), voices: new Map<number, number[]>() };
  for (const { key, fx } of cases) {
    const whole = await wholeFile(fx);
    m.add(`${key}: WER whole file, one run`, '%', whole.wer * 100);
    const runs: JobRun[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      ctx.note(`seams: ${key}, run ${i + 1}/${ctx.runs}`);
      const blind = await runJob(ctx, fx, 'seams-blind', 0);
      m.add(`${key}: WER ${CHUNK_SECONDS} s cuts, no overlap`, '%', blind.wer * 100);
      runs.push(blind);
      for (const overlapS of overlapsToRun()) {
        const r = await runJob(ctx, fx, 'seams', overlapS);
        const label = `overlap ${overlapS} s`;
        m.add(`${key}: WER ${CHUNK_SECONDS} s chunks, ${label}`, '%', r.wer * 100);
        // Each group is held to the aim by its mean (below).
        m.add(`${key}: WER minus whole file, ${label}`, 'points', (r.wer - whole.wer) * 100);
        const group = deltas[key.startsWith('continuous') ? 'speech' : 'voices'];
        if (i === 0) group.set(overlapS, [...(group.get(overlapS) ?? []), (r.wer - whole.wer) * 100]);
        m.add(`${key}: wall time, ${label}`, 's', r.wallMs / 1000);
        runs.push(r);
      }
    }
    details[key] = { audio: fx.wav, durationS: fx.durationS, reference: fx.reference, whole, runs };
  }
  const groups = [
    { of: deltas.speech, label: (n: number) => `continuous speech, mean of ${n} clips` },
    { of: deltas.voices, label: (n: number) => `two voices, mean of ${n} orders` },
  ];
  for (const { of, label } of groups)
    for (const [overlapS, ds] of of) {
      const mean = ds.reduce((a, b) => a + b, 0) / ds.length;
      m.add(`${label(ds.length)}: WER minus whole file, overlap ${overlapS} s`, 'points', mean, '<= 2');
    }
  return { metrics: m.list(), details };
}
