import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import type { AppError } from '../../src/errors.ts';
import { cepstralMean, EN_US_FRONT_END } from '../../src/transcribe/providers/local/cepstral-mean.ts';
import { C0_BIAS, CMN_SPAN_S, readPcmStart } from '../../src/transcribe/providers/local/cmn-init.ts';
import { createLocalProvider, parsePocketsphinxOutput } from '../../src/transcribe/providers/local/provider.ts';
import { outputLimitBytes } from '../../src/transcribe/providers/local/pocketsphinx-output.ts';
import type { SpawnFn } from '../../src/transcribe/providers/local/provider.ts';
import type { TranscribeInput } from '../../src/transcribe/types.ts';
import { continuousSpeechFixture, noisySpeechFixture } from '../fixtures/continuous.ts';
import { CLIPS, LIBRIVOX_DIR, speechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
/** Share of reference words (as a multiset) that pocketsphinx also recognised; measured 0.57-0.79 on these clips. */
const MIN_OVERLAP = 0.5;

function probe(file: string): number {
  return Number(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file])
      .toString()
      .trim(),
  );
}

function input(file: string, durationS: number, over: Partial<TranscribeInput> = {}): TranscribeInput {
  return {
    jobId: 'job_test',
    index: 0,
    path: file,
    durationS,
    language: null,
    prompt: null,
    model: 'pocketsphinx-en-us',
    signal: new AbortController().signal,
    ...over,
  };
}

function wordOverlap(reference: string, hypothesis: string): number {
  const left = new Map<string, number>();
  for (const w of hypothesis.toLowerCase().split(/\s+/)) left.set(w, (left.get(w) ?? 0) + 1);
  const ref = reference.toLowerCase().split(/\s+/);
  let hit = 0;
  for (const w of ref) {
    const n = left.get(w) ?? 0;
    if (n > 0) {
      hit++;
      left.set(w, n - 1);
    }
  }
  return hit / ref.length;
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isAppError(err)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

/** Real spawn that remembers the child, so a test can see how it ended. */
function recordingSpawn(): { spawn: SpawnFn; children: ChildProcess[] } {
  const children: ChildProcess[] = [];
  return {
    children,
    spawn: (cmd, args, opts) => {
      const child = spawn(cmd, args, opts);
      children.push(child);
      return child;
    },
  };
}

const isAlive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// Frozen excerpt of real `pocketsphinx_continuous -time yes` output (two utterances of speech.wav).
const RAW_OUTPUT = `he was not until this blows young man
<s> 8.510 8.600 0.999800
<sil> 8.610 8.830 0.558686
he 8.840 8.950 0.998801
was(2) 8.960 9.170 0.999900
[NOISE] 9.180 9.300 0.5
not 9.310 9.600 0.997403
</s> 11.360 11.720 1.000000
homeless to be
<s> 13.220 13.330 0.999700
homeless 13.340 13.690 0.044665
to(3) 13.700 13.790 0.393408
be 13.800 13.950 0.867000
<sil> 13.960 14.100 0.7
</s> 14.200 14.860 1.000000
<s> 15.000 15.100 1.0
<sil> 15.100 15.900 1.0
</s> 15.900 16.000 1.0
`;

describe('parsePocketsphinxOutput', () => {
  it('makes one segment per utterance with absolute word times and no fillers or pronunciation suffixes', () => {
    expect(parsePocketsphinxOutput(RAW_OUTPUT).segments).toEqual([
      { start: 8.84, end: 9.6, text: 'he was not' },
      { start: 13.34, end: 13.95, text: 'homeless to be' },
    ]);
  });

  it("gives each word with the engine's own times, fillers and pronunciation suffixes dropped", () => {
    expect(parsePocketsphinxOutput(RAW_OUTPUT).words).toEqual([
      { word: 'he', start: 8.84, end: 8.95 },
      { word: 'was', start: 8.96, end: 9.17 },
      { word: 'not', start: 9.31, end: 9.6 },
      { word: 'homeless', start: 13.34, end: 13.69 },
      { word: 'to', start: 13.7, end: 13.79 },
      { word: 'be', start: 13.8, end: 13.95 },
    ]);
  });

  it('returns no segments when the output has no words', () => {
    expect(parsePocketsphinxOutput('')).toEqual({ segments: [], words: [] });
  });
});

describe('createLocalProvider', () => {
  const provider = createLocalProvider({ logger, modelDir: MODEL_DIR });
  let tmp = '';
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'provider-local-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it.each(CLIPS.map((c) => [c.id, c.text] as const))('recognises most reference words of %s', async (id, reference) => {
    const file = path.join(LIBRIVOX_DIR, `${id}.wav`);
    const durationS = probe(file);
    const result = await provider.transcribe(input(file, durationS));
    expect(result.timing).toBe('segment');
    expect(result.language).toBe('en');
    expect(wordOverlap(reference, result.text)).toBeGreaterThanOrEqual(MIN_OVERLAP);
    expect(result.text).not.toMatch(/<\/?s>|<sil>|\[|\(\d+\)/);
    for (const s of result.segments) {
      expect(s.start).toBeGreaterThanOrEqual(0);
      expect(s.end).toBeGreaterThanOrEqual(s.start);
      expect(s.end).toBeLessThanOrEqual(durationS);
    }
  });

  it('gives ordered segments with times absolute in the file when it has several utterances', async () => {
    const fx = speechFixture();
    const result = await provider.transcribe(input(fx.wav, fx.durationS));
    expect(result.segments.length).toBeGreaterThanOrEqual(CLIPS.length);
    for (const [i, s] of result.segments.entries()) {
      expect(s.end).toBeGreaterThan(s.start);
      expect(s.end).toBeLessThanOrEqual(fx.durationS);
      if (i > 0) expect(s.start).toBeGreaterThanOrEqual(result.segments[i - 1]?.end ?? 0);
    }
    // Each clip of the fixture starts a segment inside that clip's own time range.
    for (const [i, clipStart] of fx.clipStarts.entries()) {
      const clipEnd = fx.clipStarts[i + 1] ?? fx.durationS;
      expect(result.segments.some((s) => s.start >= clipStart && s.start < clipEnd)).toBe(true);
    }
    expect(result.text).toBe(result.segments.map((s) => s.text).join(' '));
    // The words the segments are made of, in order, each timed inside the file and inside its segment.
    const words = result.words ?? [];
    expect(words.map((w) => w.word).join(' ')).toBe(result.text);
    for (const [i, w] of words.entries()) {
      expect(w.end).toBeGreaterThan(w.start);
      expect(w.end).toBeLessThanOrEqual(fx.durationS);
      if (i > 0) expect(w.start).toBeGreaterThanOrEqual(words[i - 1]?.end ?? 0);
      expect(result.segments.some((s) => s.start <= w.start && w.end <= s.end)).toBe(true);
    }
  });

  it('kills pocketsphinx and rejects with CANCELLED when the signal aborts', async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn });
    const fx = speechFixture();
    const ac = new AbortController();
    const pending = p.transcribe(input(fx.wav, fx.durationS, { signal: ac.signal }));
    // pocketsphinx starts once the chunk's cepstral mean is read.
    await until(() => rec.children.length === 1, 'pocketsphinx to start');
    ac.abort(new Error('job cancelled'));
    const err = await rejection(pending);
    expect(err.code).toBe('CANCELLED');
    const child = rec.children[0];
    expect(child?.signalCode).toBe('SIGTERM');
    expect(isAlive(child?.pid)).toBe(false);
  });

  it('does not spawn when the signal is already aborted', async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn });
    const fx = speechFixture();
    const err = await rejection(p.transcribe(input(fx.wav, fx.durationS, { signal: AbortSignal.abort() })));
    expect(err.code).toBe('CANCELLED');
    expect(rec.children).toHaveLength(0);
  });

  it('kills pocketsphinx and fails the chunk (retryable) when it runs past the timeout', async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn, timeoutS: 0.2 });
    const fx = speechFixture();
    const err = await rejection(p.transcribe(input(fx.wav, fx.durationS)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.message).toMatch(/timed out after 0.2s/);
    expect(err.retryable).toBe(true);
    expect(rec.children[0]?.signalCode).toBe('SIGTERM');
  });

  /** A stand-in for pocketsphinx that runs `body` (sh) whatever it is given. */
  async function fakeBinary(name: string, body: string): Promise<string> {
    const file = path.join(tmp, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  }

  it('kills pocketsphinx and fails the chunk (not retryable) when it prints past the output limit', async () => {
    // 2 MB of stdout (no word lines), then it hangs: past the default limit of a 6 s chunk (544 KiB).
    const binary = await fakeBinary('fake-runaway', "head -c 2000000 /dev/zero | tr '\\0' x\nexec sleep 30");
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, binary, spawn: rec.spawn, timeoutS: 20 });
    const err = await rejection(p.transcribe(input(sixSeconds('runaway.wav'), 6)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.retryable).toBe(false);
    expect(err.details).toEqual({ reason: 'output_too_large', stream: 'stdout', limitBytes: outputLimitBytes(6) });
    expect(outputLimitBytes(6)).toBe(64 * 1024 + 60 * 8 * 1024);
    const child = rec.children[0];
    expect(child?.signalCode).toBe('SIGTERM');
    expect(isAlive(child?.pid)).toBe(false);
    // The chunk's feat.params is gone with it.
    expect((await readdir(tmp)).filter((f) => f.startsWith('runaway'))).toEqual(['runaway.wav']);
  });

  it("counts pocketsphinx's stderr against the limit too (the real binary, a limit below its start-up lines)", async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn, maxOutputBytes: 4096 });
    const err = await rejection(p.transcribe(input(sixSeconds('chatty.wav'), 6)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.details).toEqual({ reason: 'output_too_large', stream: 'stderr', limitBytes: 4096 });
    expect(isAlive(rec.children[0]?.pid)).toBe(false);
  });

  it('keeps at most 1 KiB of an error line that pocketsphinx never ends', async () => {
    const binary = await fakeBinary(
      'long-error',
      "printf 'ERROR: bad ' >&2\nhead -c 300000 /dev/zero | tr '\\0' x >&2\nexit 1",
    );
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, binary, cmnInit: false });
    const err = await rejection(p.transcribe(input(sixSeconds('long-error.wav'), 6)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.details).toEqual({ exitCode: 1, signal: null });
    expect(err.message).toBe(`pocketsphinx exited with code 1: ERROR: bad ${'x'.repeat(1024 - 'ERROR: bad '.length)}`);
  });

  it("fails the chunk with pocketsphinx's error line when the WAV is not 16 kHz mono", async () => {
    const file = path.join(tmp, 'stereo.wav');
    execFileSync('ffmpeg', [
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'sine=f=440:d=1',
      '-ac',
      '2',
      '-ar',
      '44100',
      file,
    ]);
    const err = await rejection(provider.transcribe(input(file, 1)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/expected single channel mono/);
  });

  it("cuts the directories out of pocketsphinx's error line: a tenant reads it, the log keeps it whole", async () => {
    // A flag naming a file that is not there makes pocketsphinx fail with its path, as a chunk's own would.
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, extraArgs: ['-mllr', '/cs-hidden-dir/sub/x.mllr'] });
    const err = await rejection(p.transcribe(input(sixSeconds('mllr.wav'), 6)));
    expect(err.code).toBe('CHUNK_FAILED');
    expect(err.message).toMatch(/Failed to open MLLR file 'x\.mllr'/);
    expect(err.message).not.toContain('cs-hidden-dir');
  });

  it('rejects a model other than pocketsphinx-en-us and a language other than English', async () => {
    const fx = speechFixture();
    expect((await rejection(provider.transcribe(input(fx.wav, fx.durationS, { model: 'whisper-1' })))).code).toBe(
      'INVALID_FIELD',
    );
    expect((await rejection(provider.transcribe(input(fx.wav, fx.durationS, { language: 'de' })))).code).toBe(
      'INVALID_FIELD',
    );
  });

  it('reports PROVIDER_UNAVAILABLE when the binary does not exist', async () => {
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, binary: 'no-such-pocketsphinx-binary' });
    const fx = speechFixture();
    expect((await rejection(p.transcribe(input(fx.wav, fx.durationS)))).code).toBe('PROVIDER_UNAVAILABLE');
    expect(await p.check()).toMatchObject({ status: 'down', code: 'PROVIDER_UNAVAILABLE' });
  });

  /**
   * The first 6 s of a LibriVox clip (one utterance shorter than the 8 s pocketsphinx keeps its start value for),
   * with a plain 44-byte header as the slicer writes it (pocketsphinx reads samples from byte 44 on).
   */
  function sixSeconds(name: string): string {
    const file = path.join(tmp, name);
    const clip = path.join(LIBRIVOX_DIR, `${CLIPS[1].id}.wav`);
    execFileSync('ffmpeg', [
      ...['-loglevel', 'error', '-y', '-i', clip, '-t', '6', '-ar', '16000', '-ac', '1', '-fflags', '+bitexact'],
      file,
    ]);
    return file;
  }

  /** Where pocketsphinx's live CMN ends on a file when it runs alone (its last "Update to" line). */
  function pocketsphinxOwnMean(file: string): number[] {
    const alone = spawnSync(
      'pocketsphinx_continuous',
      [
        '-infile',
        file,
        '-hmm',
        `${MODEL_DIR}/en-us`,
        '-lm',
        `${MODEL_DIR}/en-us.lm.bin`,
        '-dict',
        `${MODEL_DIR}/cmudict-en-us.dict`,
      ],
      { encoding: 'utf8' },
    );
    return [...alone.stderr.matchAll(/Update to\s*<([^>]*)>/g)].at(-1)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
  }

  it("starts pocketsphinx's cepstral mean from the chunk's own, close to where pocketsphinx itself ends up", async () => {
    const file = sixSeconds('cmn.wav');
    const own = pocketsphinxOwnMean(file);
    expect(own).toHaveLength(13);

    const seen: Array<{ args: readonly string[]; featParams: string | null }> = [];
    const p = createLocalProvider({
      logger,
      modelDir: MODEL_DIR,
      spawn: (cmd, args, opts) => {
        const at = args.indexOf('-featparams');
        seen.push({ args, featParams: at === -1 ? null : readFileSync(args[at + 1] as string, 'utf8') });
        return spawn(cmd, args, opts);
      },
    });
    const result = await p.transcribe(input(file, 6));
    expect(result.words?.length).toBeGreaterThan(3);
    const params = seen[0]?.featParams ?? '';
    const init = /^-cmninit (.*)$/m.exec(params)?.[1]?.split(',').map(Number) ?? [];
    expect(init).toHaveLength(13);
    // The model's start value is 41.00 for c0; this speaker's is ~57. The default estimate leaves out pocketsphinx's
    // noise subtraction (which would lower c0 by 1-2) and takes C0_BIAS off c0 instead.
    expect(Math.abs((init[0] ?? 0) - (own[0] ?? 0))).toBeLessThan(3);
    for (let i = 1; i < 13; i++) expect(Math.abs((init[i] ?? 0) - (own[i] ?? 0)), `c${i}`).toBeLessThan(2.5);
    // Every other line is the model's own; the file is gone once the chunk is done.
    const model = readFileSync(`${MODEL_DIR}/en-us/feat.params`, 'utf8');
    expect(params.split('\n').filter((l) => !l.startsWith('-cmninit'))).toEqual(
      model.split('\n').filter((l) => !l.startsWith('-cmninit')),
    );
    expect(await readdir(tmp)).not.toContain('cmn.wav.feat.params');
  });

  /** 10 s of `wav` from `fromS` (cut mid-speech in speech without pauses), as the slicer writes a chunk. */
  function cutFrom(wav: string, fromS: number, name: string): string {
    const file = path.join(tmp, name);
    execFileSync('ffmpeg', [
      ...['-loglevel', 'error', '-y', '-ss', String(fromS), '-t', '10', '-i', wav, '-fflags', '+bitexact'],
      file,
    ]);
    return file;
  }

  /** The pocketsphinx flags and `-cmninit` the provider (by default) ran a chunk with. */
  async function frontEndOf(file: string): Promise<{ args: readonly string[]; init: number[] }> {
    const seen: Array<{ args: readonly string[]; featParams: string }> = [];
    const p = createLocalProvider({
      logger,
      modelDir: MODEL_DIR,
      spawn: (cmd, args, opts) => {
        seen.push({ args, featParams: readFileSync(args[args.indexOf('-featparams') + 1] as string, 'utf8') });
        return spawn(cmd, args, opts);
      },
    });
    const result = await p.transcribe(input(file, 10));
    expect(result.words?.length).toBeGreaterThan(5);
    const init =
      /^-cmninit (.*)$/m
        .exec(seen[0]?.featParams ?? '')?.[1]
        ?.split(',')
        .map(Number) ?? [];
    return { args: seen[0]?.args ?? [], init };
  }

  const meanOf = async (file: string): Promise<number[]> =>
    (cepstralMean((await readPcmStart(file, CMN_SPAN_S)) ?? new Int16Array(), EN_US_FRONT_END) ?? []).map((v) =>
      Number(v.toFixed(2)),
    );

  it('turns noise subtraction off, with the start value that matches, for clean speech cut mid-speech', async () => {
    const file = cutFrom(continuousSpeechFixture().wav, 20, 'clean-cut.wav');
    const { args, init } = await frontEndOf(file);
    expect(args.slice(-2)).toEqual(['-remove_noise', 'no']);
    // The mean without noise subtraction, nothing taken off c0: what pocketsphinx then decodes against.
    expect(init).toEqual(await meanOf(file));
  });

  it('keeps noise subtraction, and the start value with C0_BIAS off c0, for noisy speech cut mid-speech', async () => {
    const file = cutFrom(noisySpeechFixture().wav, 20, 'noisy-cut.wav');
    const { args, init } = await frontEndOf(file);
    expect(args).not.toContain('-remove_noise');
    const mean = await meanOf(file);
    init.forEach((v, i) =>
      expect(v, `c${i}`).toBeCloseTo(i === 0 ? (mean[0] as number) - C0_BIAS : (mean[i] as number), 1),
    );
  });

  it('keeps noise subtraction for speech with pauses (a chunk cut in a pause)', async () => {
    // speech.wav from the middle of its first 1.5 s pause: the service's cut in a pause.
    const file = cutFrom(speechFixture().wav, (speechFixture().clipStarts[1] as number) - 0.75, 'pause-cut.wav');
    const { args } = await frontEndOf(file);
    expect(args).not.toContain('-remove_noise');
  });

  it("runs on the model's own start value when told to (the plain whole-file reference)", async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn, cmnInit: false });
    await p.transcribe(input(sixSeconds('plain.wav'), 6));
    expect(rec.children[0]?.spawnargs).not.toContain('-featparams');
  });

  it('takes the start value over the span, with the c0 bias it is given, and passes extra flags on', async () => {
    const file = sixSeconds('estimate.wav');
    const seen: Array<{ args: readonly string[]; featParams: string }> = [];
    const p = createLocalProvider({
      logger,
      modelDir: MODEL_DIR,
      cmnEstimate: { spanS: 2, c0Bias: 0.5 },
      extraArgs: ['-remove_noise', 'no'],
      spawn: (cmd, args, opts) => {
        seen.push({ args, featParams: readFileSync(args[args.indexOf('-featparams') + 1] as string, 'utf8') });
        return spawn(cmd, args, opts);
      },
    });
    await p.transcribe(input(file, 6));
    const init =
      /^-cmninit (.*)$/m
        .exec(seen[0]?.featParams ?? '')?.[1]
        ?.split(',')
        .map(Number) ?? [];
    const firstTwo = cepstralMean((await readPcmStart(file, 2)) ?? new Int16Array(), EN_US_FRONT_END) ?? [];
    expect(init).toEqual(firstTwo.map((v, i) => Number((i === 0 ? v - 0.5 : v).toFixed(2))));
    expect(seen[0]?.args.slice(-2)).toEqual(['-remove_noise', 'no']);
  });

  it('does not spawn, and leaves no file behind, when the job is cancelled while the chunk is read', async () => {
    const rec = recordingSpawn();
    const p = createLocalProvider({ logger, modelDir: MODEL_DIR, spawn: rec.spawn });
    const file = sixSeconds('cancelled.wav');
    const ac = new AbortController();
    const pending = p.transcribe(input(file, 6, { signal: ac.signal }));
    ac.abort(new Error('job cancelled'));
    expect((await rejection(pending)).code).toBe('CANCELLED');
    expect(rec.children).toHaveLength(0);
    expect((await readdir(tmp)).filter((f) => f.startsWith('cancelled'))).toEqual(['cancelled.wav']);
  });

  it('checks ok when the binary is on PATH and the model files exist', async () => {
    expect(await provider.check()).toMatchObject({ status: 'ok' });
    expect(provider.models).toEqual(['pocketsphinx-en-us']);
  });

  it('checks down naming the missing files when the model directory is empty', async () => {
    const p = createLocalProvider({ logger, modelDir: tmp });
    const check = await p.check();
    expect(check).toMatchObject({ status: 'down', code: 'PROVIDER_UNAVAILABLE' });
    expect(check.detail).toContain('en-us.lm.bin');
  });
});
