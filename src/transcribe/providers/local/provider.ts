import { spawn as nodeSpawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { access, constants, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AppError, errorMessage, withoutDirectories } from '../../../errors.ts';
import { chunkCmnInit, chunkFrontEnd, withCmnInit, type CmnEstimate } from './cmn-init.ts';
import { LOCAL_MODELS, localModel } from './models.ts';
import { outputLimitBytes, watchOutput } from './pocketsphinx-output.ts';
import type { ChunkResult, ProviderCheck, Segment, TranscribeInput, TranscriptionProvider, Word } from '../../types.ts';

export type SpawnFn = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export interface LocalProviderOptions {
  logger: Logger;
  /** Directory holding en-us/ (acoustic model), en-us.lm.bin and cmudict-en-us.dict. */
  modelDir: string;
  /** @default 'pocketsphinx_continuous' (looked up on PATH) */
  binary?: string;
  /** Per chunk; @default max(60, 3 × the chunk's duration): pocketsphinx runs at ~0.3× realtime plus ~1.5 s model load. */
  timeoutS?: number;
  spawn?: SpawnFn;
  /**
   * Per chunk and per stream (stdout, stderr): past this many bytes pocketsphinx is killed and the chunk fails
   * (`details.reason` `output_too_large`). @default outputLimitBytes(the chunk's duration)
   */
  maxOutputBytes?: number;
  /** Wait between SIGTERM and SIGKILL. @default 2000 */
  killGraceMs?: number;
  /**
   * Start pocketsphinx's cepstral mean normalisation from the chunk's own mean (cmn-init.ts) instead of the
   * model's `-cmninit`, which it otherwise keeps for a chunk's first 8 s. @default true
   */
  cmnInit?: boolean;
  /**
   * How the chunk's mean is estimated (cmn-init.ts). 'by-sound': noise subtraction and the estimate that matches
   * it chosen per chunk by how the chunk sounds (chunk-sound.ts). @default 'by-sound'
   */
  cmnEstimate?: CmnEstimate | 'by-sound';
  /** More pocketsphinx flags after the model's (the seam yardstick tries decoder settings with them). */
  extraArgs?: readonly string[];
}

const FILLER = /^(<s>|<\/s>|<sil>|\[.*\]|\+\+.*\+\+)$/i;
const WORD_LINE = /^(\S+) (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)$/;

/**
 * Maps `pocketsphinx_continuous -time yes` output to segments and words. Per utterance it prints the hypothesis
 * line, then one `word start end confidence` line per word from `<s>` to `</s>`; times are absolute in
 * the input file (not per utterance). Fillers and `(2)` alternate-pronunciation suffixes are dropped.
 */
export function parsePocketsphinxOutput(stdout: string): { segments: Segment[]; words: Word[] } {
  const segments: Segment[] = [];
  const all: Word[] = [];
  let words: Word[] = [];
  const flush = (): void => {
    const first = words[0];
    const last = words[words.length - 1];
    if (first && last) segments.push({ start: first.start, end: last.end, text: words.map((w) => w.word).join(' ') });
    all.push(...words);
    words = [];
  };
  for (const line of stdout.split('\n')) {
    const m = WORD_LINE.exec(line.trim());
    if (!m) continue;
    const [, raw = '', start = '0', end = '0'] = m;
    if (raw === '<s>') flush();
    if (raw === '</s>') {
      flush();
      continue;
    }
    if (FILLER.test(raw)) continue;
    const word = raw.replace(/\(\d+\)$/, '');
    if (word !== '') words.push({ word, start: Number(start), end: Number(end) });
  }
  flush();
  return { segments, words: all };
}

function clamp(value: number, max: number): number {
  return Math.min(Math.max(value, 0), max);
}

export function createLocalProvider(options: LocalProviderOptions): TranscriptionProvider {
  const { logger, modelDir } = options;
  const binary = options.binary ?? 'pocketsphinx_continuous';
  const spawn: SpawnFn = options.spawn ?? nodeSpawn;
  const killGraceMs = options.killGraceMs ?? 2000;
  const models = LOCAL_MODELS.map((m) => m.id);
  const modelFiles = {
    hmm: path.join(modelDir, 'en-us'),
    lm: path.join(modelDir, 'en-us.lm.bin'),
    dict: path.join(modelDir, 'cmudict-en-us.dict'),
  };

  const modelArgs = ['-hmm', modelFiles.hmm, '-lm', modelFiles.lm, '-dict', modelFiles.dict, '-time', 'yes'];
  let featParams: Promise<string | null> | undefined;
  /**
   * A feat.params beside the chunk with the chunk's own cepstral mean as `-cmninit` (null to run on the model's
   * own), and the front-end flags that go with it. A file, because pocketsphinx reads `-cmninit` from the model's
   * feat.params after the command line (the flag alone is overridden); `-featparams` replaces that file.
   */
  async function chunkFrontEndArgs(input: TranscribeInput): Promise<{ featParams: string | null; args: string[] }> {
    if (options.cmnInit === false) return { featParams: null, args: [] };
    // Without the model's file or a readable chunk, pocketsphinx runs as it would alone (and reports what is wrong).
    featParams ??= readFile(path.join(modelFiles.hmm, 'feat.params'), 'utf8').catch(() => null);
    const base = await featParams;
    if (base === null) return { featParams: null, args: [] };
    const estimate = options.cmnEstimate ?? 'by-sound';
    const chosen =
      estimate === 'by-sound'
        ? await chunkFrontEnd(input.path).catch(() => null)
        : { cmnInit: await chunkCmnInit(input.path, estimate).catch(() => null), removeNoise: true, choice: null };
    // Noise subtraction goes off only with the start value that matches it: one without the other decodes worse.
    if (chosen?.cmnInit == null) return { featParams: null, args: [] };
    logger.debug({ jobId: input.jobId, chunk: input.index, frontEnd: chosen.choice }, 'pocketsphinx front end');
    const file = `${input.path}.feat.params`;
    await writeFile(file, withCmnInit(base, chosen.cmnInit));
    return { featParams: file, args: chosen.removeNoise ? [] : ['-remove_noise', 'no'] };
  }

  function run(input: TranscribeInput, frontEnd: { featParams: string | null; args: string[] }): Promise<string> {
    const timeoutS = options.timeoutS ?? Math.max(60, 3 * input.durationS);
    const maxOutputBytes = options.maxOutputBytes ?? outputLimitBytes(input.durationS);
    const featArgs = frontEnd.featParams === null ? [] : ['-featparams', frontEnd.featParams];
    const args = ['-infile', input.path, ...modelArgs, ...featArgs, ...frontEnd.args, ...(options.extraArgs ?? [])];
    const log = logger.child({ jobId: input.jobId, chunk: input.index });
    log.debug({ binary, args }, 'pocketsphinx start');

    return new Promise<string>((resolve, reject) => {
      const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let ended: 'timeout' | 'abort' | 'overflow' | null = null;
      let killTimer: NodeJS.Timeout | undefined;

      const stop = (why: 'timeout' | 'abort' | 'overflow'): void => {
        if (ended) return;
        ended = why;
        child.kill('SIGTERM');
        // A process stuck in uninterruptible I/O ignores TERM; KILL makes sure it cannot linger.
        killTimer = setTimeout(() => child.kill('SIGKILL'), killGraceMs);
        killTimer.unref();
      };
      const onAbort = (): void => stop('abort');
      const timer = setTimeout(() => stop('timeout'), timeoutS * 1000);
      timer.unref();
      input.signal.addEventListener('abort', onAbort, { once: true });

      const output = watchOutput(child, maxOutputBytes, () => stop('overflow'));

      const cleanup = (): void => {
        clearTimeout(timer);
        input.signal.removeEventListener('abort', onAbort);
      };
      child.on('error', (err: NodeJS.ErrnoException) => {
        cleanup();
        clearTimeout(killTimer);
        const code = err.code === 'ENOENT' ? 'PROVIDER_UNAVAILABLE' : 'CHUNK_FAILED';
        reject(new AppError(code, `cannot run ${binary}: ${err.message}`, { cause: err, retryable: false }));
      });
      child.on('close', (exitCode, signal) => {
        cleanup();
        clearTimeout(killTimer);
        output.end();
        if (ended === 'abort') {
          reject(new AppError('CANCELLED', 'local transcription aborted', { cause: input.signal.reason }));
        } else if (ended === 'overflow') {
          const stream = output.overflowed();
          log.warn({ stream, limitBytes: maxOutputBytes }, 'pocketsphinx printed too much, killed');
          // The same binary on the same chunk prints the same again: trying it again cannot help.
          reject(
            new AppError(
              'CHUNK_FAILED',
              `pocketsphinx printed more than ${maxOutputBytes} bytes on ${stream ?? 'its output'} and was stopped`,
              { retryable: false, details: { reason: 'output_too_large', stream, limitBytes: maxOutputBytes } },
            ),
          );
        } else if (ended === 'timeout') {
          reject(
            new AppError('CHUNK_FAILED', `pocketsphinx timed out after ${timeoutS}s`, {
              retryable: true,
              details: { timeoutS },
            }),
          );
        } else if (exitCode !== 0) {
          const detail = output.stderrSummary();
          log.warn({ exitCode, signal, stderr: detail }, 'pocketsphinx failed');
          // A bad input fails the same way every time; a process killed from outside (OOM) may not.
          reject(
            new AppError(
              'CHUNK_FAILED',
              `pocketsphinx exited with ${signal ?? `code ${exitCode}`}: ${withoutDirectories(detail)}`,
              {
                retryable: signal !== null,
                details: { exitCode, signal },
              },
            ),
          );
        } else {
          resolve(output.stdout());
        }
      });
    });
  }

  async function transcribe(input: TranscribeInput): Promise<ChunkResult> {
    if (!models.includes(input.model)) {
      throw new AppError('INVALID_FIELD', `model "${input.model}" is not available locally (use ${models.join(', ')})`);
    }
    // The upload already refused other languages; a job stored before that check still fails here, plainly.
    const languages = localModel(input.model).languages;
    if (input.language !== null && languages !== null && !languages.includes(input.language)) {
      throw new AppError(
        'INVALID_FIELD',
        `model "${input.model}" recognises only ${languages.join(', ')}, not "${input.language}"`,
      );
    }
    if (input.signal.aborted) {
      throw new AppError('CANCELLED', 'local transcription aborted', { cause: input.signal.reason });
    }
    const frontEnd = await chunkFrontEndArgs(input);
    let out: string;
    try {
      // Cancelled while the chunk's mean was read: the abort listener of run() would never fire.
      if (input.signal.aborted) {
        throw new AppError('CANCELLED', 'local transcription aborted', { cause: input.signal.reason });
      }
      out = await run(input, frontEnd);
    } finally {
      if (frontEnd.featParams !== null) await rm(frontEnd.featParams, { force: true });
    }
    const max = input.durationS > 0 ? input.durationS : Infinity;
    const parsed = parsePocketsphinxOutput(out);
    const inFile = <T extends { start: number; end: number }>(x: T): T => ({
      ...x,
      start: clamp(x.start, max),
      end: clamp(x.end, max),
    });
    const segments = parsed.segments.map(inFile);
    // Word times let the stitcher place the seam between overlapping chunks on time (seam.ts).
    const words = parsed.words.map(inFile);
    return { text: segments.map((s) => s.text).join(' '), language: 'en', segments, words, timing: 'segment' };
  }

  async function onPath(name: string): Promise<string | null> {
    const dirs = name.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
    for (const dir of dirs) {
      const candidate = dir === '' ? name : path.join(dir, name);
      try {
        await access(candidate, constants.X_OK);
        if ((await stat(candidate)).isFile()) return candidate;
      } catch {
        // not in this directory
      }
    }
    return null;
  }

  async function check(): Promise<ProviderCheck> {
    const found = await onPath(binary);
    if (!found) return { status: 'down', code: 'PROVIDER_UNAVAILABLE', detail: `${binary} not found on PATH` };
    const missing: string[] = [];
    for (const file of [path.join(modelFiles.hmm, 'mdef'), modelFiles.lm, modelFiles.dict]) {
      try {
        await access(file, constants.R_OK);
      } catch (err) {
        logger.debug({ file, err: errorMessage(err) }, 'pocketsphinx model file missing');
        missing.push(file);
      }
    }
    if (missing.length > 0) {
      return {
        status: 'down',
        code: 'PROVIDER_UNAVAILABLE',
        detail: `pocketsphinx model files missing: ${missing.join(', ')}`,
      };
    }
    return { status: 'ok', detail: `${found} with model ${modelDir}` };
  }

  return { name: 'local', models, transcribe, check };
}
