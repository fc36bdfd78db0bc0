import type { DurationProbe, FakeOpenAI, FakeOpenAIOptions } from '../../test/fake-openai/server.ts';
import { FAKE_OPENAI_KEY } from '../../test/fake-openai/server.ts';
import type { Metric } from './stats.ts';

export interface BenchContext {
  quick: boolean;
  /** Repetitions of each measured run. */
  runs: number;
  /** bench/.cache: generated audio, kept between runs. */
  cacheDir: string;
  /** This run's temp dir: service data dirs, logs, chunk outputs. */
  workDir: string;
  /** Keep data dirs (for a look after a failure). */
  keep: boolean;
  /** How the service is started, relative to the repository: src/server.ts, or dist/server.js after `npm run build`. */
  serviceEntry: string;
  /**
   * The fake provider's latency counts its own work (see FakeOpenAIOptions.ownWorkInLatency): a provider whose
   * answer time does not grow with the work it does on this machine's cores. Not the measure: a run with
   * it does not write the README's table.
   */
  fakeWorkInLatency: boolean;
  /**
   * How the fake provider reads a non-WAV file's duration (FakeOpenAIOptions.probeWith): `ffprobe` is the fake as
   * it was before it counted mp3 frames, an ffprobe child and a temp file per request (bench --fake-ffprobe).
   */
  fakeProbeWith: DurationProbe;
  note(msg: string): void;
}

export interface ScenarioOutput {
  metrics: Metric[];
  /** Raw per-run records and the settings used, copied into the JSON file. */
  details: Record<string, unknown>;
}

/** How the fake provider of a scenario that models one (pipeline, continuous) behaves. */
export type FakeProviderOptions = Pick<FakeOpenAIOptions, 'latencyMs' | 'ownWorkInLatency' | 'probeWith'>;

/** The fake provider's options at a latency, as the bench's flags set them. */
export function fakeOptionsOf(
  ctx: Pick<BenchContext, 'fakeWorkInLatency' | 'fakeProbeWith'>,
  latencyMs: number,
): FakeProviderOptions {
  return { latencyMs, ownWorkInLatency: ctx.fakeWorkInLatency, probeWith: ctx.fakeProbeWith };
}

/** The service env that points it at the fake provider with a rate limit that never binds. */
export function fakeProviderEnv(
  fake: Pick<FakeOpenAI, 'url'>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    OPENAI_API_KEY: FAKE_OPENAI_KEY,
    OPENAI_BASE_URL: fake.url,
    RATE_LIMIT_RPM: '100000',
    RATE_LIMIT_BURST: '1000',
    ...extra,
  };
}
