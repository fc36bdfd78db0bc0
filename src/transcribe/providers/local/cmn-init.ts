import { open } from 'node:fs/promises';
import { parseWavHeader } from '../../../chunker/overlap-lead.ts';
import { cepstralMean, cepstralSum, EN_US_FRONT_END, forEachMelFrame } from './cepstral-mean.ts';
import { chunkSoundOfFrames, frontEndFor, type FrontEndChoice } from './chunk-sound.ts';

/**
 * Seconds from a chunk's start its cepstral mean is taken over: the 8 s pocketsphinx decodes against its start
 * value before its own mean takes over, and as much again so that the estimate does not hang on a few phones.
 * Bounds the read and the CPU (~2 ms per second of audio).
 */
export const CMN_SPAN_S = 20;

const HEAD_BYTES = 4096;

/**
 * The first `seconds` of a 16 kHz mono 16-bit PCM WAV file (what the local engine's chunks are), or null for
 * any other file: the front end's constants hold for that format only.
 */
export async function readPcmStart(file: string, seconds: number): Promise<Int16Array | null> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEAD_BYTES, 0);
    const l = parseWavHeader(head.subarray(0, bytesRead), (await fh.stat()).size);
    if (!l || l.channels !== 1 || l.bitsPerSample !== 16 || l.sampleRate !== EN_US_FRONT_END.sampleRate) return null;
    const bytes = Math.min(l.dataBytes, Math.floor(seconds * l.sampleRate) * 2);
    const pcm = new Int16Array(bytes / 2);
    await fh.read(Buffer.from(pcm.buffer), 0, bytes, l.dataOffset);
    return pcm;
  } finally {
    await fh.close();
  }
}

/** Pure: the model's feat.params with `-cmninit` set to `mean` (added when the file has none). */
export function withCmnInit(featParams: string, mean: readonly number[]): string {
  const line = `-cmninit ${mean.map((v) => v.toFixed(2)).join(',')}`;
  if (/^-cmninit\s.*$/m.test(featParams)) return featParams.replace(/^-cmninit\s.*$/m, line);
  return `${featParams.replace(/\n?$/, '\n')}${line}\n`;
}

/**
 * Taken off c0 of the start value when pocketsphinx runs with its noise subtraction, which lowers c0 by ~1-2 and
 * which the estimate leaves out. pocketsphinx's exact mean (its noise subtraction ported, 2026-12-05) decoded
 * worse than this on the seam yardstick (+1.92 points over 12 cuts against +1.29; docs/performance.md#seams).
 */
export const C0_BIAS = 1.5;

export interface CmnEstimate {
  /** @default CMN_SPAN_S */
  spanS?: number;
  /** Taken off c0. @default C0_BIAS */
  c0Bias?: number;
}

/** The start value for pocketsphinx's cepstral mean from the chunk's own `mean` (null when it has none). */
function cmnInitOf(mean: number[] | null, estimate: CmnEstimate): number[] | null {
  const bias = estimate.c0Bias ?? C0_BIAS;
  return mean ? mean.map((v, i) => (i === 0 ? v - bias : v)) : null;
}

/** The start value for pocketsphinx's cepstral mean on this chunk: its own mean, or null when it has none. */
export async function chunkCmnInit(file: string, estimate: CmnEstimate = {}): Promise<number[] | null> {
  const pcm = await readPcmStart(file, estimate.spanS ?? CMN_SPAN_S);
  return cmnInitOf(pcm ? cepstralMean(pcm, EN_US_FRONT_END) : null, estimate);
}

/** How each front end estimates the start value: the one that matches what pocketsphinx then decodes. */
export const FRONT_END_ESTIMATES: Record<FrontEndChoice, CmnEstimate & { removeNoise: boolean }> = {
  shipped: { removeNoise: true },
  // Without noise subtraction the estimate is the mean pocketsphinx decodes: nothing to take off.
  'noise-off': { removeNoise: false, c0Bias: 0 },
};

export interface ChunkFrontEnd {
  choice: FrontEndChoice;
  /** The start value, or null when the chunk has none (pocketsphinx then starts from the model's). */
  cmnInit: number[] | null;
  /** False: run pocketsphinx with `-remove_noise no`. */
  removeNoise: boolean;
}

/**
 * The front end chosen for this chunk by its sound (chunk-sound.ts), and its start value: both from one pass of
 * the front end over the chunk's start (the two estimates differ only in what is taken off c0).
 */
export async function chunkFrontEnd(file: string): Promise<ChunkFrontEnd> {
  const pcm = await readPcmStart(file, CMN_SPAN_S);
  const sound = chunkSoundOfFrames(EN_US_FRONT_END);
  const cepstra = cepstralSum(EN_US_FRONT_END);
  if (pcm)
    forEachMelFrame(pcm, EN_US_FRONT_END, (mfspec) => {
      // The sound reads the energies; the cepstra turn them into logs in place, so they come second.
      sound.add(mfspec);
      cepstra.add(mfspec);
    });
  const choice = frontEndFor(sound.result());
  const { removeNoise, ...estimate } = FRONT_END_ESTIMATES[choice];
  return { choice, cmnInit: cmnInitOf(cepstra.mean(), estimate), removeNoise };
}
