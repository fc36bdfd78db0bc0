import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createChunkRemedies, mergePieces, type TranscriptionEvent } from '../../src/transcribe/chunk-remedies.ts';
import type { ChunkPiece, ChunkReshaper } from '../../src/transcribe/chunk-reshaper.ts';
import { ChunkTranscriptionError } from '../../src/transcribe/chunk-outcome.ts';
import type { Remedy } from '../../src/transcribe/retry-policy.ts';
import type { ChunkResult, TranscribeInput } from '../../src/transcribe/types.ts';

const logger = pino({ level: 'silent' });

const refused = (remedy: Remedy) =>
  new ChunkTranscriptionError('PROVIDER_REJECTED', `refused (${remedy})`, {
    fatalForJob: false,
    errorClass: 'x',
    attempts: 1,
    remedy,
  });
const result = (text: string, durationS: number): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start: 0, end: durationS, text }],
  timing: 'segment',
});
const LOOP = 'thank you '.repeat(20).trim();

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'remedies-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** Makes real (empty) files the way the ffmpeg reshaper names them, so the test can see they are removed. */
function fakeReshaper(): ChunkReshaper & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async reencode(file) {
      calls.push(`reencode ${path.basename(file)}`);
      const out = `${file}.reencoded.flac`;
      await writeFile(out, '');
      return out;
    },
    async split(file, durationS, parts) {
      calls.push(`split ${path.basename(file)} ${durationS}`);
      const pieces: ChunkPiece[] = [];
      for (let i = 0; i < parts; i++) {
        const out = `${file}.part${i}.mp3`;
        await writeFile(out, '');
        pieces.push({ path: out, offsetS: (i * durationS) / parts, durationS: durationS / parts });
      }
      return pieces;
    },
  };
}

/** Answers by file name: a function of the basename and the prompt, throwing or returning a result. */
function setup(answer: (file: string, input: TranscribeInput) => ChunkResult) {
  const sent: Array<{ file: string; prompt: string | null; durationS: number }> = [];
  const events: TranscriptionEvent[] = [];
  const reshaper = fakeReshaper();
  const remedies = createChunkRemedies({
    transcriber: {
      transcribe: async (input) => {
        sent.push({ file: path.basename(input.path), prompt: input.prompt, durationS: input.durationS });
        return answer(path.basename(input.path), input);
      },
    },
    reshaper,
    logger,
    onEvent: (e) => events.push(e),
  });
  return { remedies, sent, events, reshaper };
}

async function input(prompt: string | null = null, durationS = 10): Promise<TranscribeInput> {
  const file = path.join(dir, 'chunk-00003.mp3');
  await writeFile(file, '');
  return {
    jobId: 'job_a',
    index: 3,
    path: file,
    durationS,
    language: 'en',
    prompt,
    model: 'whisper-1',
    signal: new AbortController().signal,
  };
}

const leftovers = async () => (await readdir(dir)).filter((f) => f !== 'chunk-00003.mp3');

describe('chunk remedies', () => {
  it('re-encodes a chunk refused as undecodable once and transcribes the new file', async () => {
    const { remedies, sent, events } = setup((file) => {
      if (file.endsWith('.mp3')) throw refused('re-encode');
      return result('hello there', 10);
    });
    expect(await remedies.transcribe(await input())).toEqual(result('hello there', 10));
    expect(sent.map((s) => s.file)).toEqual(['chunk-00003.mp3', 'chunk-00003.mp3.reencoded.flac']);
    expect(events).toEqual([{ type: 'remedy', remedy: 're-encode', jobId: 'job_a', chunk: 3, outcome: 'recovered' }]);
    expect(await leftovers()).toEqual([]);
  });

  it('fails the chunk when the re-encoded file is refused too, without a third try', async () => {
    const { remedies, sent, events } = setup(() => {
      throw refused('re-encode');
    });
    await expect(remedies.transcribe(await input())).rejects.toMatchObject({
      code: 'PROVIDER_REJECTED',
      remedy: 're-encode',
    });
    expect(sent).toHaveLength(2);
    expect(events).toMatchObject([{ type: 'remedy', remedy: 're-encode', outcome: 'failed' }]);
    expect(await leftovers()).toEqual([]);
  });

  it('splits a too-large chunk and joins the pieces at their offsets, halving again where needed', async () => {
    // The whole chunk and its first half are too large; quarters and the second half go through.
    const { remedies, sent } = setup((file, inp) => {
      if (file === 'chunk-00003.mp3' || file === 'chunk-00003.mp3.part0.mp3') throw refused('split');
      return result(file.replace('chunk-00003.mp3.', ''), inp.durationS);
    });
    const r = await remedies.transcribe(await input());
    expect(sent.map((s) => s.file)).toEqual([
      'chunk-00003.mp3',
      'chunk-00003.mp3.part0.mp3',
      'chunk-00003.mp3.part0.mp3.part0.mp3',
      'chunk-00003.mp3.part0.mp3.part1.mp3',
      'chunk-00003.mp3.part1.mp3',
    ]);
    expect(r.text).toBe('part0.mp3.part0.mp3 part0.mp3.part1.mp3 part1.mp3');
    expect(r.segments).toEqual([
      { start: 0, end: 2.5, text: 'part0.mp3.part0.mp3' },
      { start: 2.5, end: 5, text: 'part0.mp3.part1.mp3' },
      { start: 5, end: 10, text: 'part1.mp3' },
    ]);
    expect(await leftovers()).toEqual([]);
  });

  it('stops halving at the depth limit and fails the chunk', async () => {
    const { remedies, sent } = setup(() => {
      throw refused('split');
    });
    await expect(remedies.transcribe(await input())).rejects.toMatchObject({ remedy: 'split' });
    // 1 whole + 2 halves would be 3; depth 2 lets the first half be halved once more before giving up.
    expect(sent.map((s) => s.durationS)).toEqual([10, 5, 2.5]);
    expect(await leftovers()).toEqual([]);
  });

  it('lets a job-fatal error inside a piece end the chunk at once', async () => {
    const fatal = new ChunkTranscriptionError('PROVIDER_AUTH', 'bad key', {
      fatalForJob: true,
      errorClass: 'auth',
      attempts: 1,
    });
    const { remedies, events } = setup((file) => {
      if (file === 'chunk-00003.mp3') throw refused('split');
      throw fatal;
    });
    await expect(remedies.transcribe(await input())).rejects.toBe(fatal);
    expect(events).toEqual([]);
  });

  it('sends a hallucinated chunk again without its prompt and keeps the sane answer', async () => {
    const { remedies, sent, events } = setup((_, inp) =>
      inp.prompt ? result(LOOP, 10) : result('he was not an ill disposed young man', 10),
    );
    const r = await remedies.transcribe(await input('Names: Dashwood.'));
    expect(r.text).toBe('he was not an ill disposed young man');
    expect(sent.map((s) => s.prompt)).toEqual(['Names: Dashwood.', null]);
    expect(events).toEqual([
      {
        type: 'hallucination',
        jobId: 'job_a',
        chunk: 3,
        reason: 'repeated_ngram',
        retry: 'without-prompt',
        outcome: 'recovered',
      },
    ]);
  });

  it('cuts a chunk still hallucinated without prompt in two, and keeps the pieces when they read sanely', async () => {
    const { remedies, sent, events } = setup((file, inp) =>
      file.includes('.part') ? result(`piece ${file.at(-5)}`, inp.durationS) : result(LOOP, 10),
    );
    const r = await remedies.transcribe(await input('Names: Dashwood.'));
    expect(r.text).toBe('piece 0 piece 1');
    expect(sent.map((s) => [s.file, s.prompt])).toEqual([
      ['chunk-00003.mp3', 'Names: Dashwood.'],
      ['chunk-00003.mp3', null],
      ['chunk-00003.mp3.part0.mp3', null],
      ['chunk-00003.mp3.part1.mp3', null],
    ]);
    expect(events).toMatchObject([{ type: 'hallucination', retry: 'split', outcome: 'recovered' }]);
    expect(await leftovers()).toEqual([]);
  });

  it('keeps the first answer when every retry is degenerate too, or fails for a chunk-local reason', async () => {
    const { remedies, events } = setup(() => result(LOOP, 10));
    expect((await remedies.transcribe(await input('p'))).text).toBe(LOOP);
    expect(events).toMatchObject([{ type: 'hallucination', retry: 'split', outcome: 'kept' }]);

    let calls = 0;
    const failing = setup(() => {
      calls += 1;
      if (calls === 1) return result(LOOP, 10);
      throw new ChunkTranscriptionError('CHUNK_FAILED', 'gave up', {
        fatalForJob: false,
        errorClass: 'server-error',
        attempts: 5,
      });
    });
    expect((await failing.remedies.transcribe(await input('p'))).text).toBe(LOOP);
  });
});

describe('mergePieces', () => {
  it('is chunk-timed when any piece is', () => {
    const chunkTimed: ChunkResult = {
      text: 'b',
      language: null,
      segments: [{ start: 0, end: 5, text: 'b' }],
      timing: 'chunk',
    };
    const merged = mergePieces([
      { piece: { offsetS: 0 }, result: { ...result('a', 5), language: null } },
      { piece: { offsetS: 5 }, result: chunkTimed },
    ]);
    expect(merged).toEqual({
      text: 'a b',
      language: null,
      timing: 'chunk',
      segments: [
        { start: 0, end: 5, text: 'a' },
        { start: 5, end: 10, text: 'b' },
      ],
    });
  });
});
