/**
 * The reference the service is compared with: what people write by hand to transcribe a long file.
 * Probe it, cut every chunk with its own `ffmpeg -ss -t` call, all of them before the first request, read
 * each chunk file whole into memory, send with the openai SDK at a fixed concurrency, join the texts.
 * Deliberately plain, but not a straw man: input seeking (`-ss` before `-i`) and a p-limit pool.
 *
 * Run as its own process (so its peak RSS is its own):
 *   node bench/baseline-naive.ts --input f.mp3 --base-url http://127.0.0.1:PORT/v1 --api-key K [--chunk-seconds 300]
 *     [--concurrency 3] [--mode reencode|copy] [--work-dir DIR]
 * Prints one JSON line (NaiveResult).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import OpenAI, { toFile } from 'openai';
import pLimit from 'p-limit';
import { readStatusKb } from './lib/proc.ts';

const execFileAsync = promisify(execFile);

export interface NaiveOptions {
  input: string;
  baseURL: string;
  apiKey: string;
  chunkSeconds: number;
  concurrency: number;
  /** reencode: the service's chunk encoding (16 kHz mono 32k mp3), the same work; copy: `-c copy`, the cheapest cut. */
  mode: 'reencode' | 'copy';
  workDir: string;
}

export interface NaiveResult {
  wallMs: number;
  probeMs: number;
  cutMs: number;
  firstRequestMs: number;
  chunks: number;
  textChars: number;
  /** VmHWM of this process at the end, KiB. */
  hwmKb: number | null;
}

const REENCODE = ['-ar', '16000', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '32k'];

export async function runNaive(o: NaiveOptions): Promise<NaiveResult> {
  const started = performance.now();
  const { stdout } = await execFileAsync('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'format=duration',
    '-of',
    'csv=p=0',
    o.input,
  ]);
  const duration = Number(stdout.trim());
  const probeMs = performance.now() - started;

  const dir = await mkdtemp(path.join(o.workDir, 'naive-'));
  try {
    const chunks: Array<{ file: string; start: number }> = [];
    // A sub-second tail is left out: providers reject audio that short.
    for (let start = 0, i = 0; start < duration - 1; start += o.chunkSeconds, i++) {
      const file = path.join(dir, `chunk-${i}.mp3`);
      const codec = o.mode === 'copy' ? ['-c', 'copy'] : REENCODE;
      await execFileAsync('ffmpeg', [
        '-nostdin',
        '-v',
        'error',
        '-y',
        '-ss',
        String(start),
        '-t',
        String(o.chunkSeconds),
        '-i',
        o.input,
        ...codec,
        file,
      ]);
      chunks.push({ file, start });
    }
    const cutMs = performance.now() - started - probeMs;

    const client = new OpenAI({ apiKey: o.apiKey, baseURL: o.baseURL });
    const limit = pLimit(o.concurrency);
    let firstRequestMs = Number.NaN;
    const texts = await Promise.all(
      chunks.map((c) =>
        limit(async () => {
          const buf = await readFile(c.file);
          if (Number.isNaN(firstRequestMs)) firstRequestMs = performance.now() - started;
          const res = await client.audio.transcriptions.create({
            file: await toFile(buf, path.basename(c.file)),
            model: 'whisper-1',
            response_format: 'verbose_json',
          });
          return (res.segments ?? []).map((s) => ({
            start: s.start + c.start,
            end: s.end + c.start,
            text: s.text.trim(),
          }));
        }),
      ),
    );
    const text = texts
      .flat()
      .map((s) => s.text)
      .join(' ');
    return {
      wallMs: performance.now() - started,
      probeMs,
      cutMs,
      firstRequestMs,
      chunks: chunks.length,
      textChars: text.length,
      hwmKb: readStatusKb(process.pid, 'VmHWM'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      input: { type: 'string' },
      'base-url': { type: 'string' },
      'api-key': { type: 'string' },
      'chunk-seconds': { type: 'string', default: '300' },
      concurrency: { type: 'string', default: '3' },
      mode: { type: 'string', default: 'reencode' },
      'work-dir': { type: 'string', default: os.tmpdir() },
    },
  });
  if (!values.input || !values['base-url'] || !values['api-key'])
    throw new Error('--input, --base-url and --api-key are required');
  const result = await runNaive({
    input: values.input,
    baseURL: values['base-url'],
    apiKey: values['api-key'],
    chunkSeconds: Number(values['chunk-seconds']),
    concurrency: Number(values.concurrency),
    mode: values.mode === 'copy' ? 'copy' : 'reencode',
    workDir: values['work-dir'],
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
