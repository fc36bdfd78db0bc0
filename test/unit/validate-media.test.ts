import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, MeasureResult } from '../../src/chunker/decode-check.ts';
import type { MediaProbe } from '../../src/chunker/types.ts';
import { AppError } from '../../src/errors.ts';
import {
  createMediaValidator,
  headerIsSuspicious,
  judgeDuration,
  type MediaValidatorOptions,
} from '../../src/validate/media-validator.ts';
import { MP3_PROBE } from '../support/mp3-files.ts';

const logger = pino({ level: 'silent' });

/** 10 s of 128 kbit/s mp3 is 160 000 bytes. */
const SIZE = 160_000;

const mp3Speech = MP3_PROBE;
const noAudioStreams: MediaProbe = {
  ...mp3Speech,
  formatName: 'mov,mp4,m4a,3gp,3g2,mj2',
  demuxer: 'mov',
  streamCount: 1,
  audioStreamCount: 0,
  videoStreamCount: 1,
  audio: null,
};
const matroskaContainer: MediaProbe = { ...mp3Speech, formatName: 'matroska,webm', demuxer: 'matroska' };
const manyStreams: MediaProbe = { ...mp3Speech, streamCount: 40, audioStreamCount: 40 };
const headerWithoutDuration: MediaProbe = { ...mp3Speech, durationS: Number.NaN };
const headerClaimsAnHour: MediaProbe = { ...mp3Speech, durationS: 3600 };

let dir: string;
let file: string;
let empty: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'validate-media-unit-'));
  file = path.join(dir, 'a.mp3');
  empty = path.join(dir, 'empty.mp3');
  await writeFile(file, Buffer.alloc(SIZE));
  await writeFile(empty, '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Stubs {
  probe?: MediaProbe;
  measuredS?: number;
  decode?: CheckResult;
  measure?: 'always' | 'suspicious';
}

function validator(stubs: Stubs = {}) {
  const calls = { measure: 0, decode: 0 };
  /** Each decode test's claimed duration, its signal, and what had happened when it started. */
  const decodes: Array<{ durationS: number; signal: AbortSignal | undefined; measured: boolean }> = [];
  /** What the chunk count was asked for. */
  const planned: Array<{ model: string; durationS: number; sequential: boolean | undefined }> = [];
  let measureDone = false;
  const options: MediaValidatorOptions = {
    logger,
    prober: { probe: async () => stubs.probe ?? mp3Speech },
    decodeChecker: {
      check: async (_file, { durationS, signal }) => {
        calls.decode += 1;
        decodes.push({ durationS, signal, measured: measureDone });
        await new Promise((r) => setImmediate(r));
        return stubs.decode ?? { ok: true, decodedS: 4 };
      },
      measureDecodedDuration: async (_file, { maxDurationS }): Promise<MeasureResult> => {
        calls.measure += 1;
        await new Promise((r) => setImmediate(r));
        measureDone = true;
        const decodedS = stubs.measuredS ?? 10;
        return { decodedS, overLimit: decodedS > maxDurationS, errorLines: 0 };
      },
    },
    isAllowedDemuxer: (name) => ['mp3', 'mov', 'mov,mp4,m4a,3gp,3g2,mj2', 'wav'].includes(name),
    maxDurationS: 7200,
    planned: ({ model, audio, sequential }) => {
      planned.push({ model, durationS: audio.duration_s, sequential });
      return { chunks: Math.ceil(audio.duration_s / 4), overlapS: audio.duration_s > 4 ? 1.5 : 0 };
    },
    measure: stubs.measure ?? 'suspicious',
  };
  return { v: createMediaValidator(options), calls, decodes, planned };
}

async function codeOf(stubs: Stubs, target = file): Promise<string> {
  const err = await validator(stubs)
    .v.validate({ file: target, filename: 'a.mp3', model: 'whisper-1' })
    .then(
      () => null,
      (e: unknown) => e,
    );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err.code;
}

describe('media validator', () => {
  it("runs the caller's work after the probe has started and before its answer is read", async () => {
    const order: string[] = [];
    // The probe answers only once the work ran: the validation must not wait for its answer first.
    let answer: () => void = () => undefined;
    const v = createMediaValidator({
      logger,
      prober: {
        probe: async () => {
          order.push('probe started');
          await new Promise<void>((r) => (answer = r));
          order.push('probe answered');
          return mp3Speech;
        },
      },
      decodeChecker: {
        check: async () => ({ ok: true, decodedS: 4 }),
        measureDecodedDuration: async () => ({ decodedS: 10, overLimit: false, errorLines: 0 }),
      },
      isAllowedDemuxer: (name) => name === 'mp3',
      maxDurationS: 7200,
      planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 4), overlapS: 0 }),
      measure: 'suspicious',
    });
    await v.validate({
      file,
      filename: 'talk.mp3',
      model: 'whisper-1',
      whileChecking: () => {
        order.push('work');
        answer();
      },
    });
    expect(order).toEqual(['probe started', 'work', 'probe answered']);
  });

  it('returns the audio info, bitrate and planned chunks of a good file', async () => {
    const { v, calls, planned } = validator();
    const r = await v.validate({ file, filename: 'talk.mp3', model: 'whisper-1', sequential: true });
    expect(r.audio).toEqual({
      filename: 'talk.mp3',
      size_bytes: SIZE,
      duration_s: 10,
      format: 'mp3',
      codec: 'mp3',
      sample_rate: 44_100,
      channels: 2,
      demuxer: 'mp3',
    });
    expect(r.bitrate).toBe(128_000);
    // Counted by the chunk source of the job's model, for the duration judged and the job's context.
    expect(r.planned.chunks).toBe(3);
    expect(r.planned.overlapS).toBe(1.5);
    expect(planned).toEqual([{ model: 'whisper-1', durationS: 10, sequential: true }]);
    expect(r.durationSource).toBe('header');
    expect(r.decodedS).toBe(4);
    expect(calls).toEqual({ measure: 0, decode: 1 });
  });

  it('rejects an empty file as 415 without probing', async () => {
    expect(await codeOf({}, empty)).toBe('UNSUPPORTED_MEDIA');
  });

  it.each([
    ['noAudioStreams', noAudioStreams],
    ['matroskaContainer', matroskaContainer],
    ['manyStreams', manyStreams],
  ])('rejects %s as 415 UNSUPPORTED_MEDIA', async (_, probe) => {
    expect(await codeOf({ probe })).toBe('UNSUPPORTED_MEDIA');
  });

  it('measures when the header has no duration and judges on what decodes', async () => {
    const { v, calls } = validator({ probe: headerWithoutDuration, measuredS: 9.5 });
    const r = await v.validate({ file, filename: 'a.mp3', model: 'whisper-1' });
    expect(r.audio.duration_s).toBe(9.5);
    expect(r.durationSource).toBe('measured');
    expect(calls.measure).toBe(1);
  });

  it('rejects a header claiming far more than the bytes hold as MEDIA_CORRUPT (truncated)', async () => {
    expect(await codeOf({ probe: headerClaimsAnHour, measuredS: 10 })).toBe('MEDIA_CORRUPT');
  });

  it('rejects a file whose measured duration exceeds the limit as DURATION_OUT_OF_RANGE whatever the header says', async () => {
    expect(await codeOf({ measure: 'always', measuredS: 7300 })).toBe('DURATION_OUT_OF_RANGE');
  });

  it('rejects a plausible header over the limit without measuring when measuring only suspicious files', async () => {
    const long: MediaProbe = { ...mp3Speech, durationS: 8000, audio: { ...mp3Speech.audio!, bitRate: null } };
    const { v, calls } = validator({ probe: long, measure: 'suspicious' });
    await expect(v.validate({ file, filename: 'a.mp3', model: 'whisper-1' })).rejects.toMatchObject({
      code: 'DURATION_OUT_OF_RANGE',
    });
    expect(calls).toEqual({ measure: 0, decode: 0 });
  });

  it('rejects a header promising sound when nothing decodes as MEDIA_CORRUPT', async () => {
    expect(await codeOf({ measure: 'always', measuredS: 0 })).toBe('MEDIA_CORRUPT');
  });

  it.each([
    ['zero', 0],
    ['missing', Number.NaN],
  ])('rejects a %s header duration with nothing decoding as DURATION_OUT_OF_RANGE', async (_, durationS) => {
    expect(await codeOf({ probe: { ...mp3Speech, durationS }, measuredS: 0 })).toBe('DURATION_OUT_OF_RANGE');
  });

  it('rejects a failed decode check as 422 MEDIA_CORRUPT', async () => {
    expect(await codeOf({ decode: { ok: false, reason: 'Invalid data found at 9.2 s' } })).toBe('MEDIA_CORRUPT');
  });

  it('runs the decode test beside the measure at the header duration, and keeps it when the two agree', async () => {
    const { v, calls, decodes } = validator({ measure: 'always', measuredS: 10.3 });
    const r = await v.validate({ file, filename: 'a.mp3', model: 'whisper-1' });
    expect(r.audio.duration_s).toBe(10.3);
    expect(calls).toEqual({ measure: 1, decode: 1 });
    expect(decodes.map((d) => [d.durationS, d.measured])).toEqual([[10, false]]);
  });

  it('runs the decode test again at the measured end when the header is off by more than half a second', async () => {
    const { v, calls, decodes } = validator({ measure: 'always', measuredS: 9.4 });
    expect((await v.validate({ file, filename: 'a.mp3', model: 'whisper-1' })).audio.duration_s).toBe(9.4);
    expect(calls).toEqual({ measure: 1, decode: 2 });
    expect(decodes.map((d) => [d.durationS, d.measured])).toEqual([
      [10, false],
      [9.4, true],
    ]);
    // The first one was stopped: its answer no longer counts.
    expect(decodes[0]?.signal?.aborted).toBe(true);
    expect(decodes[1]?.signal).toBeUndefined();
  });

  it('takes the measure refusing the file over the decode test, and stops that test', async () => {
    const { v, decodes } = validator({
      measure: 'always',
      measuredS: 7300,
      decode: { ok: false, reason: 'cannot decode the end' },
    });
    await expect(v.validate({ file, filename: 'a.mp3', model: 'whisper-1' })).rejects.toMatchObject({
      code: 'DURATION_OUT_OF_RANGE',
    });
    expect(decodes).toHaveLength(1);
    expect(decodes[0]?.signal?.aborted).toBe(true);
  });

  it('refuses a file whose early decode test fails at the header end when the measure agrees', async () => {
    const { v, calls } = validator({ measure: 'always', measuredS: 10, decode: { ok: false, reason: 'damaged end' } });
    await expect(v.validate({ file, filename: 'a.mp3', model: 'whisper-1' })).rejects.toMatchObject({
      code: 'MEDIA_CORRUPT',
    });
    expect(calls.decode).toBe(1);
  });

  it('always measures when told to', async () => {
    const { v, calls } = validator({ measure: 'always', measuredS: 10.02 });
    expect((await v.validate({ file, filename: 'a.mp3', model: 'whisper-1' })).audio.duration_s).toBe(10.02);
    expect(calls.measure).toBe(1);
  });
});

describe('headerIsSuspicious', () => {
  it('trusts a header whose bitrate times duration matches the size', () => {
    expect(headerIsSuspicious(mp3Speech, SIZE)).toBe(false);
    expect(headerIsSuspicious(mp3Speech, SIZE * 1.4)).toBe(false);
  });

  it('distrusts a header claiming more or far less than the bytes hold', () => {
    expect(headerIsSuspicious(mp3Speech, 2048)).toBe(true);
    expect(headerIsSuspicious(mp3Speech, SIZE * 2)).toBe(true);
    expect(headerIsSuspicious(headerWithoutDuration, SIZE)).toBe(true);
  });

  it('cannot judge without a stream bitrate, or with video taking bytes', () => {
    expect(headerIsSuspicious({ ...mp3Speech, audio: { ...mp3Speech.audio!, bitRate: null } }, 1)).toBe(false);
    expect(headerIsSuspicious({ ...mp3Speech, videoStreamCount: 1 }, 1)).toBe(false);
  });
});

describe('judgeDuration', () => {
  const m = (decodedS: number, overLimit = false): MeasureResult => ({ decodedS, overLimit, errorLines: 0 });
  const code = (run: () => unknown): string | null => {
    try {
      run();
      return null;
    } catch (err) {
      return err instanceof AppError ? err.code : 'not an AppError';
    }
  };

  it('takes what decodes over the header', () => {
    expect(judgeDuration(30, m(30.4), 60)).toBe(30.4);
    expect(judgeDuration(Number.NaN, m(12), 60)).toBe(12);
    expect(judgeDuration(30, null, 60)).toBe(30);
  });

  it('allows a small shortfall against the header', () => {
    expect(judgeDuration(100, m(89.5), 600)).toBe(89.5);
    expect(code(() => judgeDuration(100, m(88.9), 600))).toBe('MEDIA_CORRUPT');
  });

  it('rejects over the limit whether measured or claimed', () => {
    expect(code(() => judgeDuration(30, m(61, true), 60))).toBe('DURATION_OUT_OF_RANGE');
    expect(code(() => judgeDuration(61, null, 60))).toBe('DURATION_OUT_OF_RANGE');
    expect(judgeDuration(60, null, 60)).toBe(60);
  });
});
