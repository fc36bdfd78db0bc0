/** One measured quantity: every run's value, summarized as median, min and max. */
export interface Metric {
  scenario: string;
  name: string;
  unit: string;
  samples: number[];
  /** The target the issues set, for the reader: e.g. ">= 0.7". */
  aim?: string;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number, n: s.length };
}

export function median(samples: readonly number[]): number {
  return summarize(samples).median;
}

/** Collects metrics of one scenario in the order they are first pushed. */
export class MetricSet {
  readonly scenario: string;
  readonly #metrics = new Map<string, Metric>();

  constructor(scenario: string) {
    this.scenario = scenario;
  }

  add(name: string, unit: string, value: number | null | undefined, aim?: string): void {
    let m = this.#metrics.get(name);
    if (!m) {
      m = { scenario: this.scenario, name, unit, samples: [], ...(aim ? { aim } : {}) };
      this.#metrics.set(name, m);
    }
    if (value !== null && value !== undefined && Number.isFinite(value)) m.samples.push(value);
  }

  samples(name: string): number[] {
    return this.#metrics.get(name)?.samples ?? [];
  }

  list(): Metric[] {
    return [...this.#metrics.values()];
  }
}

export const kbToMiB = (kb: number | null): number | null => (kb === null ? null : kb / 1024);
export const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
