import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  removeDir,
  startServer,
  waitForJob,
  type ErrorJson,
  type JobJson,
  type TestServer,
} from '../helper.ts';
import { seededRandom } from '../fake-openai/faults.ts';
import { ERROR_CODES_4XX, ffmpeg, listedJobIds } from './hostile-kit.ts';

/** FUZZ_SEED / FUZZ_CASES reproduce or widen a run; a failure message names the seed and the case. */
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const CASES = Number(process.env.FUZZ_CASES ?? 300);
/** Every REAL_EVERY-th case is a real job (no dry_run): it must be transcribed or fail cleanly. */
const REAL_EVERY = 25;
const PARALLEL = 2;

/** Magic bytes of formats that reference other files, or that ffmpeg guesses from content. */
const MAGICS = [
  '#EXTM3U\n',
  'ffconcat version 1.0\n',
  'RIFF',
  'ID3\x04\x00',
  'fLaC',
  'OggS',
  '\x1aE\xdf\xa3',
  '\x00\x00\x00\x20ftypM4A ',
  'v=0\r\n',
  '\x89PNG\r\n\x1a\n',
  'WEBVTT\n',
];
const NAMES = ['a.mp3', 'a.wav', 'a.flac', 'a.ogg', 'a.m4a', 'a.bin', 'noext', 'a.m3u8'];

interface FuzzCase {
  index: number;
  kind: string;
  bytes: Buffer;
  filename: string;
  real: boolean;
}

/** CPU seconds of this process and its reaped children (ffprobe/ffmpeg/pocketsphinx): a load-independent cost. */
async function cpuSeconds(): Promise<number> {
  const own = process.cpuUsage();
  const fields = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1]?.split(' ') ?? [];
  // cutime and cstime are fields 16 and 17 of stat, 14 and 15 after "pid (comm) ", in clock ticks (100 Hz on Linux).
  const children = (Number(fields[13]) + Number(fields[14])) / 100;
  return (own.user + own.system) / 1e6 + children;
}

function makeCases(seeds: Buffer[], count: number, seed: number): FuzzCase[] {
  const rnd = seededRandom(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const random = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const mutations: Array<[string, () => Buffer]> = [
    ['random', () => random(1 + int(4096))],
    [
      'truncated',
      () => {
        const s = pick(seeds);
        return s.subarray(0, 1 + int(s.length - 1));
      },
    ],
    [
      'bitflip',
      () => {
        const b = Buffer.from(pick(seeds));
        for (let i = 1 + int(64); i > 0; i--) {
          const at = int(b.length);
          b[at] = (b[at] as number) ^ (1 << int(8));
        }
        return b;
      },
    ],
    [
      'header-bitflip',
      () => {
        const b = Buffer.from(pick(seeds));
        for (let i = 1 + int(8); i > 0; i--) {
          const at = int(Math.min(b.length, 256));
          b[at] = (b[at] as number) ^ (1 << int(8));
        }
        return b;
      },
    ],
    [
      'spliced',
      () => {
        const a = pick(seeds);
        const b = pick(seeds);
        return Buffer.concat([a.subarray(0, int(a.length)), b.subarray(int(b.length))]);
      },
    ],
    [
      'zeroed-range',
      () => {
        const b = Buffer.from(pick(seeds));
        const at = int(b.length);
        b.fill(rnd() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + 1 + int(4096)));
        return b;
      },
    ],
    [
      'repeated-range',
      () => {
        const s = pick(seeds);
        const at = int(s.length);
        const part = s.subarray(at, at + 1 + int(8192));
        return Buffer.concat([s.subarray(0, at), part, part, part, s.subarray(at)]);
      },
    ],
    ['magic+random', () => Buffer.concat([Buffer.from(pick(MAGICS), 'latin1'), random(int(2048))])],
    ['header+random', () => Buffer.concat([pick(seeds).subarray(0, 16 + int(512)), random(int(8192))])],
  ];
  // Each seed once as it is (they must pass), then mutations only.
  return Array.from({ length: count }, (_, index) => {
    const [kind, make]: [string, () => Buffer] =
      index < seeds.length ? ['intact', () => seeds[index] as Buffer] : pick(mutations);
    return { index, kind, bytes: make(), filename: pick(NAMES), real: index % REAL_EVERY === REAL_EVERY - 1 };
  });
}

describe('fuzzed uploads through POST /v1/jobs', () => {
  let server: TestServer;
  let dir: string;
  let seeds: Buffer[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-fuzz-'));
    const clip = path.join(dir, 'clip.wav');
    ffmpeg(['-i', speechFixture().wav, '-t', '1.5', '-c:a', 'pcm_s16le', clip]);
    const encodes: Array<[string, string[]]> = [
      ['clip.mp3', ['-c:a', 'libmp3lame', '-b:a', '32k']],
      ['clip.flac', ['-c:a', 'flac']],
      ['clip.ogg', ['-c:a', 'libvorbis', '-q:a', '0']],
      ['clip.opus', ['-c:a', 'libopus', '-b:a', '16k']],
      ['clip.m4a', ['-c:a', 'aac', '-b:a', '32k']],
    ];
    for (const [name, args] of encodes) ffmpeg(['-i', clip, ...args, path.join(dir, name)]);
    seeds = await Promise.all(['clip.wav', ...encodes.map(([n]) => n)].map((n) => readFile(path.join(dir, n))));
    // The event-loop check is off: on a machine shared with other test runs it sheds load (503) that is not the gate's.
    server = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      MAX_DURATION_S: '60',
      MAX_UPLOAD_BYTES: String(4 * 1024 * 1024),
      PRESSURE_EVENT_LOOP_DELAY_MS: '0',
    });
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
    await removeDir(dir);
  });

  it(`answers each of ${CASES} mutated files (seed ${SEED}) with 200/202 or a documented 4xx, never crashing or leaking files`, async () => {
    const started = performance.now();
    const cpuStarted = await cpuSeconds();
    const cases = makeCases(seeds, CASES, SEED);
    const accepted: string[] = [];
    const tally = new Map<string, number>();
    const failures: string[] = [];

    const run = async (c: FuzzCase): Promise<void> => {
      const label = `seed ${SEED} case ${c.index} (${c.kind}, ${c.filename}, ${c.bytes.length} bytes, head ${c.bytes.subarray(0, 12).toString('hex')})`;
      const fields: Record<string, string> = c.real ? {} : { dry_run: 'true' };
      const t0 = performance.now();
      const form = new FormData();
      form.append('file', new Blob([c.bytes]), c.filename);
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      const res = await fetch(`${server.url}/v1/jobs`, {
        method: 'POST',
        body: form,
        signal: AbortSignal.timeout(60_000),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as JobJson & ErrorJson,
      }));
      const code0 = res.status < 300 ? String(res.status) : (res.body.error?.code ?? `?${res.status}`);
      if (process.env.FUZZ_VERBOSE)
        process.stderr.write(
          `case ${c.index} ${c.kind} ${c.filename} ${c.bytes.length}B -> ${code0} ${Math.round(performance.now() - t0)}ms ${res.body.error?.details ? JSON.stringify(res.body.error.details) : ''}\n`,
        );
      const code = res.status < 300 ? String(res.status) : (res.body.error?.code ?? `?${res.status}`);
      tally.set(code, (tally.get(code) ?? 0) + 1);
      if (res.status === 200 && !c.real && res.body.dry_run === true) return;
      if (res.status === 202 && c.real && typeof res.body.id === 'string') {
        accepted.push(res.body.id);
        return;
      }
      if (c.kind === 'intact')
        failures.push(`${label}: an unmodified seed was refused: ${res.status} ${JSON.stringify(res.body)}`);
      const documented = ERROR_CODES_4XX.get(res.body.error?.code ?? '');
      if (documented !== res.status || typeof res.body.error.message !== 'string')
        failures.push(`${label}: ${res.status} ${JSON.stringify(res.body)}`);
    };

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const c = cases[next++] as FuzzCase;
        await run(c);
        if (c.index % 50 === 49)
          expect((await getJson(`${server.url}/health/live`)).status, `after case ${c.index}`).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const gateMs = performance.now() - started;
    expect(failures).toEqual([]);

    // Accepted jobs end completed or failed with a code a client can act on, never INTERNAL.
    for (const id of accepted) {
      const job = await waitForJob(server.url, id);
      expect(['completed', 'failed'], `${id}: ${JSON.stringify(job.error)}`).toContain(job.status);
      if (job.status === 'failed') expect(job.error?.code).not.toBe('INTERNAL');
    }
    // Rejected and dry-run uploads left nothing: only accepted jobs have rows or directories.
    expect((await listedJobIds(server)).sort()).toEqual([...accepted].sort());
    const strays = (await jobFiles(server.dataDir)).filter((f) => !accepted.includes(f.split('/')[0] ?? ''));
    expect(strays).toEqual([]);
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);

    const summary = [...tally.entries()]
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const cpu = (await cpuSeconds()) - cpuStarted;
    process.stderr.write(
      `fuzz: ${CASES} cases in ${Math.round(gateMs)} ms wall (+${Math.round(performance.now() - started - gateMs)} ms until ${accepted.length} real jobs ended), ` +
        `${cpu.toFixed(1)} CPU s; ${summary}\n`,
    );
    // Not vacuous: the corpus reaches both the accepting and the refusing paths.
    expect(tally.get('200') ?? 0).toBeGreaterThan(0);
    expect(tally.get('UNSUPPORTED_MEDIA') ?? 0).toBeGreaterThan(0);
    // ~60 s wall on 2 idle cores (see the summary line); the margin is for a machine shared with other runs.
  }, 300_000);
});
