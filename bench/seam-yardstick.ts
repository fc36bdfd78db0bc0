/**
 * The seam yardstick: the local engine's seam WER over several clips and cut offsets, so that a choice between
 * variants is not one lucky cut. On one ~60 s clip the WER moves by 2-3 points with where the cuts fall
 * (docs/performance.md#seams); here each variant is measured on every clip (three orders of the LibriVox clips,
 * optionally the two espeak-ng voices both ways round) at every offset of the 6 s cut grid, and the report gives
 * each one's WER minus one whole-file pocketsphinx run, their mean and spread. `--noisy` adds the first clip under
 * pink noise at 13 dB SNR, or at each of `--noisy-snr` (reported apart: the front end is chosen per chunk by how
 * noisy it is, chunk-sound.ts).
 *
 *   node --experimental-strip-types bench/seam-yardstick.ts [--variants base,plain] [--overlaps 0,4]
 *     [--offsets 0,1.5,3,4.5] [--packet-s 0.128] [--noisy [--noisy-snr 13,20]] [--voices] [--jobs 2] [--json out.json]
 *
 * It runs what the service runs on a job, without the service: the cut points of `planCutPoints` (no pause to
 * cut in, so every cut is hard) shifted by the offset, each chunk after the first starting the overlap before its
 * cut (as `withOverlap` joins them; `--packet-s 0.128` moves each cut to the next packet boundary, as the
 * service's segment muxer does on 16 kHz PCM), the real local provider on each chunk file, `stitchTranscript` on the
 * results. pocketsphinx is deterministic, so each chunk's result is cached in bench/.cache/seam-yardstick under
 * the hash of its samples, the provider's settings and the start value it computes: a re-run, or a seam variant on the same chunks, is free.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import pino from 'pino';
import { parseWavHeader, wavHeader } from '../src/chunker/overlap-lead.ts';
import { planCutPoints } from '../src/chunker/cut-points.ts';
import { chunkCmnInit } from '../src/transcribe/providers/local/cmn-init.ts';
import { chunkSound, frontEndFor, type FrontEndChoice } from '../src/transcribe/providers/local/chunk-sound.ts';
import { createLocalProvider, type LocalProviderOptions } from '../src/transcribe/providers/local/provider.ts';
import { stitchTranscript } from '../src/transcribe/stitcher.ts';
import type { ChunkResult } from '../src/transcribe/types.ts';
import {
  continuousSpeechFixture,
  noisySpeechFixture,
  OTHER_ROUNDS,
  twoVoicesFixture,
  type ContinuousFixture,
} from '../test/fixtures/continuous.ts';
import { wer } from '../test/support/wer.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const CACHE_DIR = path.join(REPO_ROOT, 'bench', '.cache', 'seam-yardstick');
const MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
/** The seams case's chunk length: every cut splits a word. */
const CHUNK_SECONDS = 6;

type ProviderSettings = Pick<LocalProviderOptions, 'cmnInit' | 'cmnEstimate' | 'extraArgs'>;

/** Each front end the service may choose for a chunk (chunk-sound.ts), as fixed settings. */
const FIXED: Record<FrontEndChoice, ProviderSettings> = {
  shipped: { cmnEstimate: {} },
  'noise-off': { cmnEstimate: { c0Bias: 0 }, extraArgs: ['-remove_noise', 'no'] },
};

/** The variants compared: provider settings (the seam itself is the stitcher's, the same for all). */
const VARIANTS: Record<string, ProviderSettings> = {
  /** As the service runs the local engine: the front end chosen per chunk by its sound. */
  base: {},
  /** Before that choice: noise subtraction on, the start value without it and C0_BIAS off c0. */
  shipped: FIXED.shipped,
  /** pocketsphinx as it runs alone: the model's start value. */
  plain: { cmnInit: false },
  /** The mean of the chunk's first 8 s only: what pocketsphinx's first update of its live mean averages. */
  span8: { cmnEstimate: { spanS: 8 } },
  /** Voice activity detection off: in speech without pauses it has nothing to remove but may clip a start. */
  vadoff: { extraArgs: ['-remove_silence', 'no'] },
  /** Noise subtraction off, in pocketsphinx and in the start value: at a chunk's start its noise estimate is speech. */
  noiseoff: FIXED['noise-off'],
  /** Noise subtraction off with the model's start value: whether noiseoff's gain is the noise estimate's start. */
  'plain-noiseoff': { cmnInit: false, extraArgs: ['-remove_noise', 'no'] },
};

interface Clip {
  name: string;
  fx: ContinuousFixture;
}

interface Pcm {
  samples: Buffer;
  layout: ReturnType<typeof parseWavHeader> & object;
}

function readPcm(file: string): Pcm {
  const buf = readFileSync(file);
  const layout = parseWavHeader(buf.subarray(0, 4096), buf.length);
  if (!layout || layout.channels !== 1 || layout.sampleRate !== 16_000 || layout.bitsPerSample !== 16)
    throw new Error(`${file}: not 16 kHz mono 16-bit PCM WAV`);
  return { samples: buf.subarray(layout.dataOffset, layout.dataOffset + layout.dataBytes), layout };
}

const sha = (...parts: Array<string | Buffer>): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 24);
};

/** Fixed settings for a chunk: the front end the service would choose for it, when the variant leaves that to it. */
function resolve(settings: ProviderSettings, bytes: Buffer): { settings: ProviderSettings; choice?: FrontEndChoice } {
  if (settings.cmnInit === false || settings.cmnEstimate !== undefined) return { settings };
  const samples = new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const choice = frontEndFor(chunkSound(samples.subarray(0, 20 * 16_000)));
  return { settings: FIXED[choice], choice };
}

/** One chunk through the local provider, or its cached result. */
async function transcribeChunk(
  variant: ProviderSettings,
  bytes: Buffer,
  pcm: Pcm,
  tmpDir: string,
  index: number,
): Promise<ChunkResult & { choice?: FrontEndChoice }> {
  const { settings, choice } = resolve(variant, bytes);
  const file = path.join(tmpDir, `${sha(bytes)}-${index}.wav`);
  writeFileSync(file, Buffer.concat([wavHeader(pcm.layout, bytes.length), bytes]));
  // The start value the provider will compute goes into the key: a change to how it is estimated is a new result.
  const estimate = settings.cmnEstimate === 'by-sound' ? undefined : settings.cmnEstimate;
  const init = settings.cmnInit === false ? null : await chunkCmnInit(file, estimate);
  // The shipped estimate keys as `{}` did when it was the default, so its cached results stay valid.
  const keyed = settings === FIXED.shipped ? {} : settings;
  const key = sha(JSON.stringify(keyed), ...(init ? [JSON.stringify(init)] : []), bytes);
  const cached = path.join(CACHE_DIR, `${key}.json`);
  if (existsSync(cached)) {
    rmSync(file, { force: true });
    return { ...(JSON.parse(readFileSync(cached, 'utf8')) as ChunkResult), ...(choice && { choice }) };
  }
  const provider = createLocalProvider({ logger: pino({ level: 'silent' }), modelDir: MODEL_DIR, ...settings });
  try {
    const result = await provider.transcribe({
      jobId: 'job_seam_yardstick',
      index,
      path: file,
      durationS: bytes.length / pcm.layout.byteRate,
      language: 'en',
      prompt: null,
      model: 'pocketsphinx-en-us',
      signal: new AbortController().signal,
    });
    writeFileSync(cached, JSON.stringify(result));
    return { ...result, ...(choice && { choice }) };
  } finally {
    rmSync(file, { force: true });
  }
}

/** The cut points of a job with no pause to cut in, the grid shifted by `offsetS` (the first chunk longer). */
function cutsAt(durationS: number, offsetS: number, packetS: number): number[] {
  const { cuts } = planCutPoints({ durationS: durationS - offsetS, targetS: CHUNK_SECONDS });
  // The segment muxer starts a chunk at the first packet at or after its cut (PCM packets of 2048 samples).
  return cuts.map((c) => (packetS > 0 ? Math.ceil((c + offsetS) / packetS - 1e-9) * packetS : c + offsetS));
}

interface Measure {
  clip: string;
  offsetS: number;
  wer: number;
  whole: number;
  /** How many chunks took each front end, when the variant let the service choose. */
  choices: Partial<Record<FrontEndChoice, number>>;
}

async function measure(
  clip: Clip,
  pcm: Pcm,
  settings: ProviderSettings,
  { overlapS, offsetS, packetS }: { overlapS: number; offsetS: number; packetS: number },
  limit: ReturnType<typeof pLimit>,
  tmpDir: string,
  whole: number,
): Promise<Measure> {
  const durationS = pcm.samples.length / pcm.layout.byteRate;
  const cuts = cutsAt(durationS, offsetS, packetS);
  const bounds = [0, ...cuts, durationS];
  const byte = (s: number): number => Math.max(0, Math.round(s * 16_000)) * 2;
  const chunks = await Promise.all(
    bounds.slice(0, -1).map((cut, index) =>
      limit(async () => {
        const startS = index === 0 ? 0 : Math.max(0, cut - overlapS);
        const bytes = pcm.samples.subarray(byte(startS), byte(bounds[index + 1] as number));
        const result = await transcribeChunk(settings, bytes, pcm, tmpDir, index);
        return { index, startS, durationS: bytes.length / pcm.layout.byteRate, status: 'done' as const, result };
      }),
    ),
  );
  const t = stitchTranscript({ jobId: 'job_seam_yardstick', durationS, chunks, overlapS });
  const choices: Measure['choices'] = {};
  for (const { result } of chunks) if (result.choice) choices[result.choice] = (choices[result.choice] ?? 0) + 1;
  return { clip: clip.name, offsetS, wer: wer(t.text, clip.fx.reference), whole, choices };
}

/** One plain pocketsphinx run on the whole clip (the model's start value), cached like a chunk. */
async function wholeWer(clip: Clip, pcm: Pcm, tmpDir: string): Promise<number> {
  const result = await transcribeChunk({ cmnInit: false }, pcm.samples, pcm, tmpDir, 0);
  return wer(result.text, clip.fx.reference);
}

const stats = (xs: readonly number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, sd, min: Math.min(...xs), max: Math.max(...xs) };
};
const pts = (x: number): string => (x >= 0 ? '+' : '') + (x * 100).toFixed(2);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'base' },
      overlaps: { type: 'string', default: '4' },
      offsets: { type: 'string', default: '0,1.5,3,4.5' },
      'packet-s': { type: 'string', default: '0' },
      voices: { type: 'boolean', default: false },
      noisy: { type: 'boolean', default: false },
      'noisy-snr': { type: 'string', default: '13' },
      jobs: { type: 'string', default: String(Math.max(1, os.availableParallelism())) },
      json: { type: 'string' },
    },
  });
  const numbers = (s: string): number[] => s.split(',').map((v) => Number(v.trim()));
  const overlaps = numbers(values.overlaps);
  const offsets = numbers(values.offsets);
  const variants = values.variants.split(',').map((name) => {
    const settings = VARIANTS[name];
    if (!settings) throw new Error(`unknown variant ${name}; known: ${Object.keys(VARIANTS).join(', ')}`);
    return { name, settings };
  });
  const clips: Clip[] = [
    { name: 'speech A', fx: continuousSpeechFixture() },
    ...OTHER_ROUNDS.map((rounds, i) => ({ name: `speech ${'BC'[i]}`, fx: continuousSpeechFixture(rounds) })),
    ...(values.noisy
      ? numbers(values['noisy-snr']).map((snr) => ({
          name: `noisy A (pink, ${snr} dB SNR)`,
          fx: noisySpeechFixture(snr),
        }))
      : []),
    ...(values.voices
      ? [
          { name: 'voices', fx: twoVoicesFixture() },
          { name: 'voices swapped', fx: twoVoicesFixture(true) },
        ]
      : []),
  ];
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'seam-yardstick-'));
  const limit = pLimit(Number(values.jobs));
  const out: Array<{ variant: string; overlapS: number; runs: Measure[] }> = [];
  try {
    const pcms = clips.map((c) => readPcm(c.fx.wav));
    const wholes = await Promise.all(clips.map((c, i) => limit(() => wholeWer(c, pcms[i] as Pcm, tmpDir))));
    for (const v of variants) {
      for (const overlapS of overlaps) {
        const runs = await Promise.all(
          clips.flatMap((c, i) =>
            offsets.map((off) =>
              measure(
                c,
                pcms[i] as Pcm,
                v.settings,
                { overlapS, offsetS: off, packetS: Number(values['packet-s']) },
                limit,
                tmpDir,
                wholes[i] as number,
              ),
            ),
          ),
        );
        out.push({ variant: v.name, overlapS, runs });
        report(v.name, overlapS, runs, offsets);
      }
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 2));
}

/** One markdown row per clip (its WER minus the whole-file run at each offset), then speech and voices overall. */
function report(variant: string, overlapS: number, runs: readonly Measure[], offsets: readonly number[]): void {
  const lines = [`\n### ${variant}, overlap ${overlapS} s (WER minus one whole-file run, points)\n`];
  lines.push(`| clip (whole-file WER) | ${offsets.map((o) => `offset ${o} s`).join(' | ')} | mean |`);
  lines.push(`|---|${offsets.map(() => '---|').join('')}---|`);
  for (const clip of [...new Set(runs.map((r) => r.clip))]) {
    const rs = runs.filter((r) => r.clip === clip);
    const d = rs.map((r) => r.wer - r.whole);
    const whole = ((rs[0]?.whole ?? 0) * 100).toFixed(2);
    lines.push(`| ${clip} (${whole} %) | ${d.map(pts).join(' | ')} | ${pts(stats(d).mean)} |`);
  }
  const chosen = runs.map((r) =>
    Object.entries(r.choices)
      .map(([k, n]) => `${k} ${n}`)
      .join(', '),
  );
  if (chosen.some((c) => c !== '')) lines.push(`\nfront ends chosen, per clip and offset: ${chosen.join(' / ')}`);
  for (const group of ['speech', 'noisy', 'voices']) {
    const d = runs.filter((r) => r.clip.startsWith(group)).map((r) => r.wer - r.whole);
    if (d.length === 0) continue;
    const s = stats(d);
    lines.push(
      `\n${group}: mean ${pts(s.mean)}, sd ${(s.sd * 100).toFixed(2)}, range ${pts(s.min)} .. ${pts(s.max)} (n=${d.length})`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
