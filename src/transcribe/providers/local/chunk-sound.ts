import { EN_US_FRONT_END, forEachMelFrame, type FrontEnd } from './cepstral-mean.ts';

/**
 * What a chunk sounds like, as far as the choice of pocketsphinx's front end goes: whether it is speech without
 * a pause (a chunk cut mid-speech from a recording without pauses) and how far its speech stands above its noise.
 * Figures from the frames' mel energies (the front end pocketsphinx runs), in dB.
 */
export interface ChunkSound {
  /** 90th minus 1st percentile of the frames' log energy: the speech's level over the noise floor. */
  rangeDb: number;
  /** Longest run of frames at or below the 10th percentile, in seconds: a pause, where there is one. */
  longestQuietS: number;
  /** Whether the first QUIET_START_S are all at or below the 10th percentile (the chunk starts in a pause). */
  startsQuiet: boolean;
}

/** A stretch this long at the noise floor is a pause (the planner cuts in pauses of 0.3 s; speech has gaps of ~0.25 s). */
export const PAUSE_S = 0.4;
/** A chunk cut in a pause starts with at least half of it: the planner cuts in the middle of 0.3 s or more. */
export const QUIET_START_S = 0.15;
/**
 * Below this the recording is noisy. Measured on 6 s chunks with 4 s of overlap (docs/performance.md#seams):
 * clean LibriVox speech 37.2-42.6 dB; the same under pink noise at 25 / 20 / 13 dB SNR 26.0-27.4, 21.2-22.6 and
 * 14.5-15.8 dB, where noise subtraction decodes better.
 */
export const NOISY_RANGE_DB = 32;

const quantile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

/**
 * The figures of the mel frames `add`ed (forEachMelFrame's; read, not changed); `result()`: null for less than
 * one frame.
 */
export function chunkSoundOfFrames(fe: FrontEnd = EN_US_FRONT_END): {
  add(mfspec: Float64Array): void;
  result(): ChunkSound | null;
} {
  const energies: number[] = [];
  return {
    add(mfspec) {
      let e = 0;
      for (const v of mfspec) e += v;
      // A floor, so digital silence is very quiet rather than -Infinity.
      energies.push(10 * Math.log10(e + 1e-9));
    },
    result: () => soundOf(energies, fe),
  };
}

/** chunkSoundOfFrames' figures of 16-bit samples. */
export function chunkSound(samples: Int16Array, fe: FrontEnd = EN_US_FRONT_END): ChunkSound | null {
  const sound = chunkSoundOfFrames(fe);
  forEachMelFrame(samples, fe, (mfspec) => sound.add(mfspec));
  return sound.result();
}

function soundOf(energies: readonly number[], fe: FrontEnd): ChunkSound | null {
  if (energies.length === 0) return null;
  const sorted = Float64Array.from(energies).sort();
  // The quietest frames are the noise floor; a tenth of the frames are quiet, even in speech without pauses.
  const quiet = quantile(sorted, 0.1);
  let run = 0;
  let longest = 0;
  for (const e of energies) {
    run = e <= quiet ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  const framesPerS = fe.sampleRate / fe.frameShift;
  const start = energies.slice(0, Math.round(QUIET_START_S * framesPerS));
  return {
    rangeDb: quantile(sorted, 0.9) - quantile(sorted, 0.01),
    longestQuietS: longest / framesPerS,
    startsQuiet: start.length > 0 && start.every((e) => e <= quiet),
  };
}

/**
 * How pocketsphinx's front end runs on a chunk (cmn-init.ts):
 * - `shipped`: noise subtraction on, the start value estimated without it and C0_BIAS off c0;
 * - `noise-off`: noise subtraction off (`-remove_noise no`), the start value exactly the mean it decodes.
 */
export type FrontEndChoice = 'shipped' | 'noise-off';

/**
 * Pure: the front end for a chunk of this sound. Measured on the seam yardstick (docs/performance.md#seams): in
 * clean speech without pauses a chunk decodes ~3 points better without noise subtraction, under pink noise at
 * 25 dB SNR or more 2.5-6 points worse; speech with pauses decodes worse without it (and a chunk cut in a pause is
 * not cut mid-speech), so those keep what shipped before.
 */
export function frontEndFor(sound: ChunkSound | null): FrontEndChoice {
  if (sound === null || sound.startsQuiet || sound.longestQuietS >= PAUSE_S) return 'shipped';
  return sound.rangeDb >= NOISY_RANGE_DB ? 'noise-off' : 'shipped';
}
