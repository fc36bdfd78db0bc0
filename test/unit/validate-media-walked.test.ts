import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckOptions, CheckResult, MeasureResult } from '../../src/chunker/decode-check.ts';
import type { Mp3StreamMeasure } from '../../src/chunker/mp3-duration.ts';
import type { MediaProbe } from '../../src/chunker/types.ts';
import { AppError } from '../../src/errors.ts';
import { createMediaValidator } from '../../src/validate/media-validator.ts';
import { MP3_PROBE } from '../support/mp3-files.ts';

/*
 * An mp3 whose frames were walked as the upload streamed in: the validator takes that walk as the measure and
 * starts the start/end decode test at its end before the probe answers, taking each outcome in the order the
 * checks always refused in.
 */

const SIZE = MP3_PROBE.sizeBytes;
const mp3 = MP3_PROBE;

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'validate-walked-'));
  file = path.join(dir, 'a.mp3');
  await writeFile(file, Buffer.alloc(SIZE));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What measureMp3Stream answers for an upload of `bytes` whose frames hold `seconds`. */
function walked(seconds: number, opts: { bytes?: number; overLimit?: boolean } = {}): Pick<Mp3StreamMeasure, 'result'> {
  return {
    result: () => ({
      walk: { ok: true, seconds, frames: Math.round(seconds * 38), overLimit: opts.overLimit ?? false },
      byteAt: (atS) => Math.round((atS / seconds) * SIZE),
      bytes: opts.bytes ?? SIZE,
    }),
  };
}

interface Setup {
  probe?: () => Promise<MediaProbe>;
  decode?: (opts: CheckOptions) => Promise<CheckResult>;
}

function validator(setup: Setup = {}) {
  const seen = { measures: 0, decodes: [] as CheckOptions[], decodesWhenProbed: -1, decodesEnded: 0 };
  const v = createMediaValidator({
    logger: pino({ level: 'silent' }),
    prober: {
      probe: async () => {
        seen.decodesWhenProbed = seen.decodes.length;
        return (setup.probe ?? (async () => mp3))();
      },
    },
    decodeChecker: {
      check: async (_file, opts) => {
        seen.decodes.push(opts);
        try {
          return await (setup.decode ?? (async () => ({ ok: true as const, decodedS: 10 })))(opts);
        } finally {
          seen.decodesEnded += 1;
        }
      },
      measureDecodedDuration: async (_file, { maxDurationS }): Promise<MeasureResult> => {
        seen.measures += 1;
        return { decodedS: 10, overLimit: 10 > maxDurationS, errorLines: 0 };
      },
    },
    isAllowedDemuxer: (name) => ['mp3', 'wav'].includes(name),
    maxDurationS: 7200,
    planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 4), overlapS: 0 }),
  });
  return { v, seen };
}

/** A decode test that runs until it is stopped, then says it was cancelled (as the real one does). */
function untilStopped(opts: CheckOptions): Promise<CheckResult> {
  return new Promise((_resolve, reject) => {
    opts.signal?.addEventListener('abort', () => reject(new AppError('CANCELLED', 'stopped')), { once: true });
  });
}

describe('media validator, an mp3 walked as it arrived', () => {
  it('measures nothing more and starts the decode test at the walked end before the probe answers', async () => {
    const { v, seen } = validator();
    const r = await v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(9.8) });
    expect(seen.measures).toBe(0);
    expect(seen.decodesWhenProbed).toBe(1);
    expect(seen.decodes).toHaveLength(1);
    expect(seen.decodes[0]).toMatchObject({ demuxer: 'mp3', durationS: 9.8 });
    // The end window's frame comes from the walk, not from walking the file again.
    expect(seen.decodes[0]?.mp3ByteAt?.(4.8)).toBe(Math.round((4.8 / 9.8) * SIZE));
    expect(r).toMatchObject({ durationSource: 'measured', decodedS: 9.8, audio: { duration_s: 9.8 } });
  });

  it('refuses for the probe first, and stops the decode test started beside it before answering', async () => {
    const { v, seen } = validator({
      probe: async () => {
        throw new AppError('UNSUPPORTED_MEDIA', 'not recognised', { details: { reason: 'not_recognised' } });
      },
      decode: untilStopped,
    });
    await expect(
      v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(9.8) }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED_MEDIA',
    });
    expect(seen.decodes[0]?.signal?.aborted).toBe(true);
    expect(seen.decodesEnded).toBe(1);
  });

  it('refuses for the probed container before a failed decode test', async () => {
    const { v, seen } = validator({
      probe: async () => ({ ...mp3, formatName: 'hls', demuxer: 'hls' }),
      decode: async () => ({ ok: false, reason: 'damaged end' }),
    });
    await expect(
      v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(9.8) }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED_MEDIA',
    });
    expect(seen.decodesEnded).toBe(1);
  });

  it('refuses for the measure before the decode test, which is not run at all', async () => {
    const { v, seen } = validator();
    await expect(
      v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(7201, { overLimit: true }) }),
    ).rejects.toMatchObject({ code: 'DURATION_OUT_OF_RANGE' });
    expect(seen.decodes).toHaveLength(0);
  });

  it('refuses a failed decode test at the walked end as MEDIA_CORRUPT', async () => {
    const { v } = validator({ decode: async () => ({ ok: false, reason: 'damaged end' }) });
    await expect(
      v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(9.8) }),
    ).rejects.toMatchObject({
      code: 'MEDIA_CORRUPT',
    });
  });

  it.each([
    ['the probe finds another format', { probe: async () => ({ ...mp3, formatName: 'wav', demuxer: 'wav' }) }, SIZE],
    ['the file on disk is not what streamed by', {}, SIZE - 1],
  ])('measures the file as before when %s, stopping the test started ahead', async (_what, setup, bytes) => {
    const { v, seen } = validator({
      ...setup,
      decode: async (opts) => (opts.mp3ByteAt ? untilStopped(opts) : { ok: true, decodedS: 10 }),
    });
    const r = await v.validate({ file, filename: 'a.mp3', model: 'whisper-1', walked: walked(9.8, { bytes }) });
    expect(seen.measures).toBe(1);
    expect(r.audio.duration_s).toBe(10);
    expect(seen.decodes.every((d) => d.mp3ByteAt === undefined || d.signal?.aborted === true)).toBe(true);
    expect(seen.decodesEnded).toBe(seen.decodes.length);
  });
});
