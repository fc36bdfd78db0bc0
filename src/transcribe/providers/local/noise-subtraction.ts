/**
 * pocketsphinx's spectral noise subtraction and voice activity decision, ported from sphinxbase 5prealpha
 * (fe_noise.c, floating-point build, as Debian's libsphinxbase3 0.8+5prealpha+1 runs it). It works on each
 * frame's mel-band energies before the log: it tracks a smoothed power, a noise floor and a signal floor per band,
 * and scales every band by a gain (smoothed over neighbouring bands) that takes the noise out. The cepstra
 * pocketsphinx decodes, and so the mean its live normalisation converges to, are computed from the scaled energies:
 * a start value computed without this step comes out ~1-2 higher in c0 and off by up to ~1.5 elsewhere.
 */

const SMOOTH_WINDOW = 4;
const LAMBDA_POWER = 0.7;
const LAMBDA_A = 0.995;
const LAMBDA_B = 0.5;
const LAMBDA_T = 0.85;
const MU_T = 0.2;
const MAX_GAIN = 20;
const SLOW_PEAK_FORGET_FACTOR = 0.9995;
const SLOW_PEAK_LEARN_FACTOR = 0.9;
const SPEECH_VOLUME_RANGE = 8;
/** pocketsphinx's `-vad_threshold` default: the log ratio of signal to noise a speech frame must reach in some band. */
export const VAD_THRESHOLD = 2;

/** fe_lower_envelope: a floor that rises slowly and falls fast. */
function lowerEnvelope(buf: Float64Array, floor: Float64Array): void {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i] as number;
    const f = floor[i] as number;
    floor[i] = b >= f ? LAMBDA_A * f + (1 - LAMBDA_A) * b : LAMBDA_B * f + (1 - LAMBDA_B) * b;
  }
}

export interface NoiseSubtraction {
  /**
   * One frame's mel-band energies, scaled in place when noise removal is on (fe_track_snr). Returns whether the
   * frame counts as speech for the voice activity detection.
   */
  track(mfspec: Float64Array): boolean;
}

/**
 * The per-stream state of fe_track_snr (set up from the first frame, as fe_init_noisestats and the first call do).
 * `removeNoise` false: only the speech decision, the energies untouched (`-remove_noise no`).
 */
export function noiseSubtraction(bands: number, removeNoise = true): NoiseSubtraction {
  const power = new Float64Array(bands);
  const noise = new Float64Array(bands);
  const floor = new Float64Array(bands);
  const peak = new Float64Array(bands);
  const signal = new Float64Array(bands);
  const gain = new Float64Array(bands);
  let slowPeakSum = 0;
  let started = false;

  /** fe_is_frame_quiet: the frame is far below the slowly tracked peak level. */
  function isQuiet(): boolean {
    let sum = 0;
    for (const s of signal) sum += s;
    const level = Math.log(sum);
    const factor = level > slowPeakSum ? SLOW_PEAK_LEARN_FACTOR : SLOW_PEAK_FORGET_FACTOR;
    slowPeakSum = slowPeakSum * factor + level * (1 - factor);
    return slowPeakSum - SPEECH_VOLUME_RANGE > level;
  }

  return {
    track(mfspec) {
      if (!started) {
        for (let i = 0; i < bands; i++) {
          power[i] = mfspec[i] as number;
          noise[i] = (mfspec[i] as number) / MAX_GAIN;
          floor[i] = (mfspec[i] as number) / MAX_GAIN;
          peak[i] = 0;
        }
        started = true;
      }
      for (let i = 0; i < bands; i++) {
        power[i] = LAMBDA_POWER * (power[i] as number) + (1 - LAMBDA_POWER) * (mfspec[i] as number);
      }
      lowerEnvelope(power, noise);
      let lrt = 0;
      for (let i = 0; i < bands; i++) {
        signal[i] = Math.max((power[i] as number) - (noise[i] as number), 1);
        // NaN for a band with no energy at all (0/0), as in C: it never raises lrt.
        const snr = Math.log((power[i] as number) / (noise[i] as number));
        if (snr > lrt) lrt = snr;
      }
      const quiet = isQuiet();
      const speech = !(lrt < VAD_THRESHOLD || quiet);
      lowerEnvelope(signal, floor);
      // fe_temp_masking
      for (let i = 0; i < bands; i++) {
        const input = signal[i] as number;
        peak[i] = (peak[i] as number) * LAMBDA_T;
        if (input < LAMBDA_T * (peak[i] as number)) signal[i] = (peak[i] as number) * MU_T;
        if (input > (peak[i] as number)) peak[i] = input;
      }
      if (!removeNoise) return speech;
      for (let i = 0; i < bands; i++) {
        const s = Math.max(signal[i] as number, floor[i] as number);
        const p = power[i] as number;
        gain[i] = Math.max(s < MAX_GAIN * p ? s / p : MAX_GAIN, 1 / MAX_GAIN);
      }
      // fe_weight_smooth: each band by the mean gain of the bands within SMOOTH_WINDOW of it.
      for (let i = 0; i < bands; i++) {
        const lo = Math.max(i - SMOOTH_WINDOW, 0);
        const hi = Math.min(i + SMOOTH_WINDOW, bands - 1);
        let sum = 0;
        for (let j = lo; j <= hi; j++) sum += gain[j] as number;
        mfspec[i] = (mfspec[i] as number) * (sum / (hi - lo + 1));
      }
      return speech;
    },
  };
}
