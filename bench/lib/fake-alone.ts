import path from 'node:path';
import { FAKE_OPENAI_KEY, type FakeOpenAI } from '../../test/fake-openai/server.ts';
import type { AudioFile } from './audio.ts';
import type { ServiceJobRun } from './service-job.ts';
import { median } from './stats.ts';
import { run, runOk } from './proc.ts';

/**
 * The fake provider on its own, with no service running: its answer time for one chunk-sized request, and for the
 * last of `c` sent at once. Each request costs the fake CPU of its own (reading and parsing the form, hashing the
 * file, an ffprobe of it in a temp file after the latency), on the same 2 cores as everything else; requests that
 * land together contend for them, so the last of three is answered later than one alone. That is a cost no service
 * can take out of a round of a pool that sends chunks together (see fakeAloneSpeedup).
 * curl is the client (separate processes, as the service is), sending what the service sends for a chunk.
 */
export async function fakeAlone(
  fake: FakeOpenAI,
  sample: string,
  concurrencies: readonly number[],
  trials = 5,
): Promise<Map<number, number>> {
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
  const out = new Map<number, number>();
  for (const c of concurrencies) {
    const lasts: number[] = [];
    for (let t = 0; t < trials; t++) lasts.push(Math.max(...(await Promise.all(Array.from({ length: c }, one)))));
    out.set(c, median(lasts));
  }
  return out;
}

/**
 * fakeAlone with a chunk-sized sample of `audio`: `chunkSeconds` of it from 600 s in (or its middle, for a shorter
 * file), its frames copied as the service cuts them.
 */
export async function fakeAloneWithChunkOf(
  fake: FakeOpenAI,
  audio: AudioFile,
  workDir: string,
  chunkSeconds: number,
  concurrencies: readonly number[],
): Promise<Map<number, number>> {
  const fromS = Math.min(600, Math.max(0, audio.durationS - chunkSeconds) / 2);
  const sample = path.join(workDir, `fake-alone-sample${path.extname(audio.path)}`);
  await runOk('ffmpeg', [
    ...['-nostdin', '-v', 'error', '-y', '-ss', String(fromS), '-t', String(chunkSeconds), '-i', audio.path],
    ...['-map', '0:a:0', '-c', 'copy', sample],
  ]);
  return fakeAlone(fake, sample, concurrencies);
}

/**
 * The speedup of c over 1 of the fake-alone schedule: each run's wait for its first request, then ceil(chunks / c)
 * rounds, each as long as the last of c requests sent at once to the fake alone (fakeAlone's figures): what a
 * service adding nothing to the fake's own times would reach if its c requests went out together every round. An
 * estimate, not a bound: lanes that drift apart do not all pay the last of c each round. `fromAccepted`: both
 * measured from the 202 (processing) rather than the upload's start.
 */
export function fakeAloneSpeedup(
  alone: ReadonlyMap<number, number>,
  base: ServiceJobRun,
  run: ServiceJobRun,
  c: number,
  fromAccepted = false,
): number | null {
  const one = alone.get(1);
  const many = alone.get(c);
  if (one === undefined || many === undefined || base.firstRequestMs === null || run.firstRequestMs === null)
    return null;
  const baseStart = base.firstRequestMs - (fromAccepted ? base.acceptedMs : 0);
  const runStart = run.firstRequestMs - (fromAccepted ? run.acceptedMs : 0);
  return (baseStart + base.chunks * one) / (runStart + Math.ceil(run.chunks / c) * many);
}
