/**
 * What each import costs in RSS: in a fresh node the given modules are imported one after another; after each a
 * full GC runs and VmRSS (/proc/self/status) and the V8 heap in use are read, and the step's cost is the growth
 * over the step before (so a module's shared dependencies count where they are first loaded). Repeated in
 * several fresh processes, medians printed: one step varies by a few hundred KiB with what the kernel maps in.
 * `--alone` imports each module by itself in its own process instead (its cost over bare node).
 *
 *   npm run build && node --experimental-strip-types bench/import-cost.ts [--runs 5] [--alone] [spec...]
 *
 * Without specs: the packages and node built-ins the idle service has loaded when it first answers, in its load
 * order, then the service's own modules (what src/main.ts imports, from dist/), so the last rows are what the
 * service's code builds at import on top of its dependencies. A spec starting with ./ is a file of the repository.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** What `node dist/server.js` had loaded when /health/live first answered (a module load hook), top-level only. */
const SERVICE_IMPORTS = [
  'node:http',
  'node:sqlite',
  'close-with-grace',
  'pino',
  'fastify',
  '@fastify/multipart',
  '@fastify/sse',
  'prom-client',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  'typebox',
  '@fastify/under-pressure',
  '@fastify/rate-limit',
  'zod',
  'yaml',
  '@fastify/static',
  'iso-639-1',
  'fluent-ffmpeg',
  'p-limit',
  'ipaddr.js',
  'bottleneck',
  './dist/config.js',
  './dist/logger.js',
  './dist/jobs/store.js',
  './dist/service/wiring.js',
  './dist/http/app.js',
];

/** The child: imports in order, prints one JSON array of [spec, rssKiB, heapUsedKiB] per step. */
const CHILD = `
import { readFileSync } from 'node:fs';
const specs = JSON.parse(process.argv[1]);
const rssKb = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const sample = (spec) => { globalThis.gc(); globalThis.gc(); return [spec, rssKb(), Math.round(process.memoryUsage().heapUsed / 1024)]; };
const out = [sample('(bare node)')];
for (const spec of specs) {
  await import(spec.startsWith('/') ? 'file://' + spec : spec);
  out.push(sample(spec));
}
process.stdout.write(JSON.stringify(out));
`;

type Step = [spec: string, rssKb: number, heapKb: number];

function runChild(specs: string[]): Step[] {
  const resolved = specs.map((s) => (s.startsWith('./') ? path.join(REPO_ROOT, s) : s));
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', CHILD, JSON.stringify(resolved)],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  return JSON.parse(out) as Step[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (i: number): number => s[i] ?? NaN;
  return s.length % 2 ? at((s.length - 1) / 2) : (at(s.length / 2 - 1) + at(s.length / 2)) / 2;
}

/** Step i of a run (every run has the same steps). */
function step(steps: Step[], i: number): Step {
  const st = steps[i];
  if (st === undefined) throw new Error(`no step ${i}`);
  return st;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string', default: '5' }, alone: { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
const specs = positionals.length > 0 ? positionals : SERVICE_IMPORTS;
const mib = (kb: number): string => (kb / 1024).toFixed(1).padStart(6);

if (values.alone) {
  const bare: number[] = [];
  const cost = new Map<string, { rss: number[]; heap: number[] }>(specs.map((s) => [s, { rss: [], heap: [] }]));
  for (let r = 0; r < runs; r++) {
    for (const spec of specs) {
      const steps = runChild([spec]);
      const [base, after] = [step(steps, 0), step(steps, 1)];
      bare.push(base[1]);
      cost.get(spec)?.rss.push(after[1] - base[1]);
      cost.get(spec)?.heap.push(after[2] - base[2]);
    }
  }
  console.log(`bare node: ${mib(median(bare))} MiB RSS; each module alone, median of ${runs} (MiB):`);
  console.log('   rss   heap  module');
  for (const [spec, c] of cost) console.log(`${mib(median(c.rss))} ${mib(median(c.heap))}  ${spec}`);
} else {
  const all = Array.from({ length: runs }, () => runChild(specs));
  console.log(`cumulative, in order, median of ${runs} (MiB): step cost, then the total after it`);
  console.log('   rss   heap  rss-total  module');
  const first = all[0] ?? [];
  for (let i = 0; i < first.length; i++) {
    const d = (k: 1 | 2): number => median(all.map((steps) => step(steps, i)[k] - step(steps, i - 1)[k]));
    const total = median(all.map((steps) => step(steps, i)[1]));
    const name = step(first, i)[0].replace(REPO_ROOT + '/', './');
    console.log(`${i > 0 ? `${mib(d(1))} ${mib(d(2))}` : ' '.repeat(13)}  ${mib(total)}     ${name}`);
  }
}
