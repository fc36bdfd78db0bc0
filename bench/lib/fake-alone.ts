import path from 'node:path';
import { FAKE_OPENAI_KEY } from '../../test/fake-openai/server.ts';
import { startFakeOpenAIProcess } from '../../test/support/fake-openai-process.ts';
import { LOOPBACK } from '../../test/support/place.ts';
import type { AudioFile } from './audio.ts';
import type { FakeProviderOptions } from './context.ts';
import type { ServiceJobRun } from './service-job.ts';
import { median, type MetricSet } from './stats.ts';
import { readCpuMs, run, runOk } from './proc.ts';

/** What the fake provider alone did (fakeAlone). */
export interface FakeAlone {
  /** Per concurrency c: the last answer of c requests sent at once, ms (median over the trials). */
  answers: Map<number, number>;
  /**
   * The fake's own CPU per request over every request sent, ms: its node process, and the children it ran (an
   * ffprobe, when it asks one); null when /proc could not be read.
   */
  cpuPerRequest: { ownMs: number; childrenMs: number } | null;
}

/**
 * The fake provider on its own, with no service running: its answer time for one chunk-sized request, and for the
 * last of `c` sent at once, and the CPU it spends on each. Each request costs the fake CPU of its own (reading the
 * form as it streams in, hashing the file, counting an mp3's frames; an ffprobe of it in a temp file instead with
 * probeWith 'ffprobe', ~60 ms of CPU for a 5 MB mp3), on the same 2 cores as everything else; requests that land
 * together contend for them, so the last of three may be answered later than one alone. That is a cost no service
 * can take out of a round of a pool that sends chunks together (see fakeAloneSpeedup).
 * The fake runs as its own process here (the service's runs have it in the bench's process), so its CPU is its
 * own: /proc/<pid>/stat before and after, the curl clients' and the bench's excluded. curl is the client (separate
 * processes, as the service is), sending what the service sends for a chunk.
 */
export async function fakeAlone(
  options: FakeProviderOptions,
  sample: string,
  concurrencies: readonly number[],
  trials = 5,
): Promise<FakeAlone> {
  const fake = await startFakeOpenAIProcess(LOOPBACK, { port: 0, controlPort: 0, ...options });
  try {
    const one = async (): Promise<number> => {
      const r = await run('curl', [
        ...['-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total}'],
        ...['-H', `Authorization: Bearer ${FAKE_OPENAI_KEY}`],
        ...['-F', `file=@${sample};filename=chunk-00001${path.extname(sample)}`, '-F', 'model=whisper-1'],
        ...['-F', 'response_format=verbose_json', '-F', 'timestamp_granularities[]=word'],
        ...['-F', 'timestamp_granularities[]=segment', `${fake.url}/audio/transcriptions`],
      ]);
      const [status, total] = r.stdout.trim().split(' ');
      if (r.code !== 0 || status !== '200') throw new Error(`the fake alone answered ${status} (${r.stderr.trim()})`);
      return Number(total) * 1000;
    };
    const answers = new Map<number, number>();
    const cpu0 = readCpuMs(fake.pid);
    let requests = 0;
    for (const c of concurrencies) {
      const lasts: number[] = [];
      for (let t = 0; t < trials; t++) {
        lasts.push(Math.max(...(await Promise.all(Array.from({ length: c }, one)))));
        requests += c;
      }
      answers.set(c, median(lasts));
    }
    const cpu1 = readCpuMs(fake.pid);
    const cpuPerRequest =
      cpu0 && cpu1
        ? { ownMs: (cpu1.ownMs - cpu0.ownMs) / requests, childrenMs: (cpu1.childrenMs - cpu0.childrenMs) / requests }
        : null;
    return { answers, cpuPerRequest };
  } finally {
    await fake.close();
  }
}

/**
 * fakeAlone with a chunk-sized sample of `audio`: `chunkSeconds` of it from 600 s in (or its middle, for a shorter
 * file), its frames copied as the service cuts them.
 */
export async function fakeAloneWithChunkOf(
  options: FakeProviderOptions,
  audio: AudioFile,
  workDir: string,
  chunkSeconds: number,
  concurrencies: readonly number[],
): Promise<FakeAlone> {
  const fromS = Math.min(600, Math.max(0, audio.durationS - chunkSeconds) / 2);
  const sample = path.join(workDir, `fake-alone-sample${path.extname(audio.path)}`);
  await runOk('ffmpeg', [
    ...['-nostdin', '-v', 'error', '-y', '-ss', String(fromS), '-t', String(chunkSeconds), '-i', audio.path],
    ...['-map', '0:a:0', '-c', 'copy', sample],
  ]);
  return fakeAlone(options, sample, concurrencies);
}

/**
 * The speedup of c over 1 of the fake-alone schedule: each run's wait for its first request, then ceil(chunks / c)
 * rounds, each as long as the last of c requests sent at once to the fake alone (fakeAlone's figures): what a
 * service adding nothing to the fake's own times would reach if its c requests went out together every round. An
 * estimate, not a bound: lanes that drift apart do not all pay the last of c each round. `fromAccepted`: both
 * measured from the 202 (processing) rather than the upload's start.
 */
export function fakeAloneSpeedup(
  alone: FakeAlone,
  base: ServiceJobRun,
  run: ServiceJobRun,
  c: number,
  fromAccepted = false,
): number | null {
  const one = alone.answers.get(1);
  const many = alone.answers.get(c);
  if (one === undefined || many === undefined || base.firstRequestMs === null || run.firstRequestMs === null)
    return null;
  const baseStart = base.firstRequestMs - (fromAccepted ? base.acceptedMs : 0);
  const runStart = run.firstRequestMs - (fromAccepted ? run.acceptedMs : 0);
  return (baseStart + base.chunks * one) / (runStart + Math.ceil(run.chunks / c) * many);
}

/** The fake-alone rows of a scenario: the last answer of c sent at once, and the fake's own CPU per request. */
export function addFakeAloneMetrics(m: MetricSet, alone: FakeAlone): void {
  for (const [c, ms] of alone.answers) m.add(`fake alone: the last answer of ${c} sent at once`, 's', ms / 1000);
  m.add('fake alone: its CPU per request, node', 'ms', alone.cpuPerRequest?.ownMs);
  m.add('fake alone: its CPU per request, its children (ffprobe)', 'ms', alone.cpuPerRequest?.childrenMs);
}
