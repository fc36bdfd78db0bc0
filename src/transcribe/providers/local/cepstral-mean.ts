/**
 * The mean of the cepstra pocketsphinx computes from 16 kHz speech: what its live cepstral mean normalisation
 * (CMN) converges to on this audio. pocketsphinx starts every file from the model's `-cmninit` and keeps it for
 * the first utterance's first 8 s (800 frames; sphinxbase cmn_live.c), so a short chunk is decoded against a
 * mean that belongs to no speaker at all. Given this mean up front it decodes the chunk as a long run would.
 *
 * The front end is sphinxbase's (fe_sigproc.c) with the en-us model's feat.params: pre-emphasis 0.97, 410-sample
 * Hamming window every 160 samples, 512-point FFT power spectrum, 25 unit-area triangular mel filters rounded to
 * FFT bins between 130 and 6800 Hz, natural log, DCT-II (c0 scaled by sqrt(1/25), the rest by sqrt(2/25)), lifter
 * 22, over every frame: as pocketsphinx computes them with `-remove_noise no -remove_silence no`. Checked against
 * the features pocketsphinx itself logs (`-mfclogdir`; test/unit/cepstral-mean.test.ts). Its spectral noise
 * subtraction is left out: with it on, pocketsphinx decodes a chunk better from this mean with C0_BIAS taken off
 * c0 than from its own exact mean (cmn-init.ts, docs/performance.md#seams).
 */

export interface FrontEnd {
  sampleRate: number;
  alpha: number;
  frameShift: number;
  frameSize: number;
  fftSize: number;
  filters: number;
  lowerHz: number;
  upperHz: number;
  ceps: number;
  lifter: number;
}

/** sphinxbase's defaults with the en-us model's feat.params (-lowerf 130 -upperf 6800 -nfilt 25 -lifter 22). */
export const EN_US_FRONT_END: FrontEnd = {
  sampleRate: 16_000,
  alpha: 0.97,
  frameShift: 160,
  frameSize: 410,
  fftSize: 512,
  filters: 25,
  lowerHz: 130,
  upperHz: 6800,
  ceps: 13,
  lifter: 22,
};

interface Filter {
  first: number;
  weights: Float64Array;
}

const mel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
const melInv = (m: number): number => 700 * (10 ** (m / 2595) - 1);

/** Triangular filters as sphinxbase builds them (fe_build_melfilters, round_filters and unit_area on). */
function melFilters(fe: FrontEnd): Filter[] {
  const lo = mel(fe.lowerHz);
  const step = (mel(fe.upperHz) - lo) / (fe.filters + 1);
  const binHz = fe.sampleRate / fe.fftSize;
  const out: Filter[] = [];
  for (let i = 0; i < fe.filters; i++) {
    const [f0, f1, f2] = [0, 1, 2].map((k) => Math.trunc(melInv(lo + (i + k) * step) / binHz + 0.5) * binHz) as [
      number,
      number,
      number,
    ];
    const weights: number[] = [];
    let first = -1;
    for (let j = 0; j < fe.fftSize / 2; j++) {
      const hz = j * binHz;
      if (hz < f0) continue;
      if (hz > f2) break;
      const up = ((hz - f0) / (f1 - f0)) * (2 / (f2 - f0));
      const down = ((f2 - hz) / (f2 - f1)) * (2 / (f2 - f0));
      if (first === -1) first = j;
      weights.push(Math.max(0, Math.min(up, down)));
    }
    out.push({ first: Math.max(first, 0), weights: Float64Array.from(weights) });
  }
  return out;
}

/** An in-place radix-2 FFT of `re` + i·`im` of length `n`, its twiddle factors computed once. */
function fftOf(n: number): (re: Float64Array, im: Float64Array) => void {
  const cos = Float64Array.from({ length: n / 2 }, (_, k) => Math.cos((-2 * Math.PI * k) / n));
  const sin = Float64Array.from({ length: n / 2 }, (_, k) => Math.sin((-2 * Math.PI * k) / n));
  const swap = new Uint32Array(n);
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    swap[i] = j;
  }
  return (re, im) => {
    for (let i = 1; i < n; i++) {
      const j = swap[i] as number;
      if (i < j) {
        [re[i], re[j]] = [re[j] as number, re[i] as number];
        [im[i], im[j]] = [im[j] as number, im[i] as number];
      }
    }
    for (let len = 2; len <= n; len <<= 1) {
      const half = len >> 1;
      const stride = n / len;
      for (let i = 0; i < n; i += len) {
        for (let k = 0; k < half; k++) {
          const wr = cos[k * stride] as number;
          const wi = sin[k * stride] as number;
          const a = i + k;
          const b = a + half;
          const xr = (re[b] as number) * wr - (im[b] as number) * wi;
          const xi = (re[b] as number) * wi + (im[b] as number) * wr;
          re[b] = (re[a] as number) - xr;
          im[b] = (im[a] as number) - xi;
          re[a] = (re[a] as number) + xr;
          im[a] = (im[a] as number) + xi;
        }
      }
    }
  };
}

/** sphinxbase's fe_mel_cep: log energies floored at LOG_FLOOR, so a band with none is not -Infinity. */
const LOG_FLOOR = 1e-4;

/**
 * Each frame's mel-band energies as sphinxbase's front end computes them (pre-emphasis, Hamming window, power
 * spectrum, triangular filters), handed to `onFrame` in order. The array is reused: copy what is kept.
 */
export function forEachMelFrame(samples: Int16Array, fe: FrontEnd, onFrame: (mfspec: Float64Array) => void): void {
  const filters = melFilters(fe);
  const fft = fftOf(fe.fftSize);
  const window = Float64Array.from(
    { length: fe.frameSize },
    (_, i) => 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (fe.frameSize - 1)),
  );
  const re = new Float64Array(fe.fftSize);
  const im = new Float64Array(fe.fftSize);
  const mfspec = new Float64Array(fe.filters);
  for (let start = 0; start + fe.frameSize <= samples.length; start += fe.frameShift) {
    re.fill(0);
    im.fill(0);
    for (let i = 0; i < fe.frameSize; i++) {
      const prior = start + i > 0 ? (samples[start + i - 1] as number) : 0;
      re[i] = ((samples[start + i] as number) - fe.alpha * prior) * (window[i] as number);
    }
    fft(re, im);
    for (let f = 0; f < fe.filters; f++) {
      const { first, weights } = filters[f] as Filter;
      let energy = 0;
      for (let k = 0; k < weights.length; k++) {
        const bin = first + k;
        energy += (weights[k] as number) * ((re[bin] as number) ** 2 + (im[bin] as number) ** 2);
      }
      mfspec[f] = energy;
    }
    onFrame(mfspec);
  }
}

/**
 * The mean cepstral vector (`fe.ceps` values, c0 first) of the mel frames `add`ed (forEachMelFrame's) as
 * pocketsphinx's live normalisation sums them, leaving out frames with c0 < 0 (cmn_live.c skips them as having no
 * energy). `add` turns the frame's energies into logs in place: give it a frame after anything else that reads
 * them. `mean()`: null when no frame is left (silence, or shorter than one window).
 */
export function cepstralSum(fe: FrontEnd = EN_US_FRONT_END): {
  add(mfspec: Float64Array): void;
  mean(): number[] | null;
} {
  const dct = Array.from({ length: fe.ceps }, (_, i) =>
    Float64Array.from({ length: fe.filters }, (_, j) => {
      const scale = i === 0 ? Math.sqrt(1 / fe.filters) : Math.sqrt(2 / fe.filters);
      const lifter = 1 + (fe.lifter / 2) * Math.sin((i * Math.PI) / fe.lifter);
      return scale * lifter * Math.cos((Math.PI * i * (j + 0.5)) / fe.filters);
    }),
  );
  const sum = new Float64Array(fe.ceps);
  let frames = 0;
  const cep = new Float64Array(fe.ceps);
  return {
    add(mfspec) {
      for (let f = 0; f < fe.filters; f++) mfspec[f] = Math.log((mfspec[f] as number) + LOG_FLOOR);
      for (let i = 0; i < fe.ceps; i++) {
        const row = dct[i] as Float64Array;
        let c = 0;
        for (let j = 0; j < fe.filters; j++) c += (row[j] as number) * (mfspec[j] as number);
        cep[i] = c;
      }
      if ((cep[0] as number) < 0) return;
      for (let i = 0; i < fe.ceps; i++) sum[i] = (sum[i] as number) + (cep[i] as number);
      frames++;
    },
    mean: () => (frames === 0 ? null : Array.from(sum, (v) => v / frames)),
  };
}

/** cepstralSum's mean of 16-bit samples. */
export function cepstralMean(samples: Int16Array, fe: FrontEnd = EN_US_FRONT_END): number[] | null {
  const cepstra = cepstralSum(fe);
  forEachMelFrame(samples, fe, (mfspec) => cepstra.add(mfspec));
  return cepstra.mean();
}
