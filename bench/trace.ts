/**
 * One job through the real service at LOG_LEVEL=debug against the fake provider, and each chunk's way through it:
 * `node --experimental-strip-types bench/trace.ts <audio> [--concurrency 3] [--latency 300] [--chunk 300]
 * [--entry dist/server.js]`. Columns are seconds after the 202 (the service log's `job accepted`): the chunk cut
 * (pipeline `chunk cut`), sent (transcriber `sending chunk`), arrived at the fake, its body read there, answered,
 * the result stored (pipeline `chunk transcribed`); then where the time went: waiting for a pool slot, the upload,
 * the provider's own time (latency plus the fake's parsing and ffprobe), storing the result. Before them, the
 * service's CPU time during the job and each silence scan (start..end, windows). The log is kept.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeOpenAI } from '../test/fake-openai/server.ts';
import { fakeProviderEnv, type BenchContext } from './lib/context.ts';
import { readLogLines } from './lib/service.ts';
import { runServiceJob } from './lib/service-job.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: 'string', default: '3' },
    latency: { type: 'string', default: '300' },
    chunk: { type: 'string', default: '300' },
    entry: { type: 'string', default: 'src/server.ts' },
  },
});
const audio = positionals[0];
if (!audio) throw new Error('usage: bench/trace.ts <audio> [--concurrency N] [--latency ms] [--chunk s] [--entry f]');

const workDir = mkdtempSync(path.join(os.tmpdir(), 'cs-trace-'));
const fake = await startFakeOpenAI({ latencyMs: Number(values.latency) });
const ctx = {
  workDir,
  keep: true,
  serviceEntry: values.entry,
  fakeWorkInLatency: false,
  fakeProbeWith: 'in-process',
  note: () => undefined,
} as unknown as BenchContext;
let run: Awaited<ReturnType<typeof runServiceJob>>;
try {
  run = await runServiceJob({
    ctx,
    fake,
    audio: { path: path.resolve(audio), durationS: 0, bytes: 0, generatedMs: 0 },
    name: `trace-c${values.concurrency}`,
    timeoutMs: 30 * 60_000,
    env: fakeProviderEnv(fake, {
      TRANSCRIBE_CONCURRENCY: String(values.concurrency),
      CHUNK_SECONDS: String(values.chunk),
      LOG_LEVEL: 'debug',
    }),
  });
} finally {
  await fake.close();
}
const requests = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
const lines = readLogLines(run.logFile);
const t0 = Number(lines.find((l) => l.msg === 'job accepted')?.time ?? 0);
/** The first time each chunk index logged `msg` (and passed `pick`). */
const at = (msg: string, pick: (l: Record<string, unknown>) => boolean = () => true): Map<number, number> => {
  const m = new Map<number, number>();
  for (const l of lines)
    if (l.msg === msg && typeof l.chunk === 'number' && pick(l) && !m.has(l.chunk)) m.set(l.chunk, Number(l.time));
  return m;
};
const cut = at('chunk cut');
const sent = at('sending chunk');
// The pipeline's line (after the store write) has no attempt field; the transcriber's has one.
const stored = at('chunk transcribed', (l) => l.attempt === undefined);
const s = (ms: number | null | undefined): string => (ms == null ? '-' : ((ms - t0) / 1000).toFixed(3)).padStart(8);
const d = (a: number | null | undefined, b: number | null | undefined): string =>
  (a == null || b == null ? '-' : String(a - b)).padStart(7);

console.log(`log ${run.logFile}`);
console.log(
  `status ${run.status}, chunks ${run.chunks}, 202 after ${run.acceptedMs} ms, processing ${run.wallMs - run.acceptedMs} ms`,
);
for (const msg of ['slicing', 'cut points planned while slicing', 'job completed'])
  console.log(`${s(Number(lines.find((l) => l.msg === msg)?.time))}  ${msg}`);
if (run.cpuMs)
  console.log(`service CPU: own ${run.cpuMs.ownMs} ms, children (ffmpeg, ffprobe) ${run.cpuMs.childrenMs} ms`);
// Each silence scan (ffmpeg run): when it started and ended, and its windows (-ss +-t), stopped early or not.
const scans = new Map<unknown, { time: number; windows: string }>();
for (const l of lines) {
  if (l.msg === 'ffmpeg silencedetect' && Array.isArray(l.args)) {
    const args = l.args as string[];
    const windows = args.flatMap((a, i) => (a === '-ss' ? [`${args[i + 1]}+${args[i + 3]}`] : []));
    scans.set(l.run, { time: Number(l.time), windows: windows.join(' ') });
  } else if (l.msg === 'ffmpeg silencedetect ended') {
    const started = scans.get(l.run);
    const how = l.settled ? ' stopped after the near part' : '';
    console.log(`${s(started?.time)}..${s(Number(l.time))}  scan${how}: ${started?.windows.slice(0, 80) ?? '?'}`);
  }
}
console.log('   k     cut    sent  arrived   body in answered  stored |  slot ms upload  provider  store');
for (let k = 0; k < Math.max(cut.size, requests.length); k++) {
  // Requests in the order they arrived: one per chunk when nothing was retried.
  const r = requests[k];
  console.log(
    `${String(k).padStart(4)} ${s(cut.get(k))}${s(sent.get(k))}${s(r?.time)}${s(r?.receivedAt)}${s(r?.answeredAt)}${s(stored.get(k))} |` +
      `${d(sent.get(k), cut.get(k))}${d(r?.receivedAt, r?.time)}${d(r?.answeredAt, r?.receivedAt)}${d(stored.get(k), r?.answeredAt)}`,
  );
}
