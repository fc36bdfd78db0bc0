import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { isAllowedDemuxer } from '../../src/chunker/containers.ts';
import { createDecodeChecker } from '../../src/chunker/decode-check.ts';
import { createProber, type Prober } from '../../src/chunker/ffprobe.ts';
import { measureMp3Stream } from '../../src/chunker/mp3-duration.ts';
import { createMediaValidator } from '../../src/validate/media-validator.ts';
import { speechFixture } from '../fixtures/speech.ts';

/*
 * The caller's work run while an upload's media is checked (the upload route compiles the job answers'
 * serializers then, http/app.ts), with the real ffprobe and ffmpeg: it runs once every child process of the check
 * is started, and a throw from it leaves none of them running.
 */

const logger = pino({ level: 'silent' });
const MAX_DURATION_S = 120;

let speech: ReturnType<typeof speechFixture>;

/** This process's ffmpeg and ffprobe children (exited ones not yet reaped included), by name. */
function children(): string[] {
  const out = execFileSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((name) => name.trim())
    .filter((name) => name === 'ffmpeg' || name === 'ffprobe')
    .sort();
}

/** The speech mp3's frame walk, as the upload route makes it while the file streams in. */
async function walkedSpeech() {
  const measure = measureMp3Stream({ maxDurationS: MAX_DURATION_S });
  measure.push(await readFile(speech.mp3));
  return measure;
}

function validator(prober: Pick<Prober, 'probe'> = createProber({ logger, timeoutS: 20 })) {
  return createMediaValidator({
    logger,
    prober,
    decodeChecker: createDecodeChecker({ logger, timeoutS: 20 }),
    isAllowedDemuxer,
    maxDurationS: MAX_DURATION_S,
    planned: ({ audio }) => ({ chunks: Math.ceil(audio.duration_s / 10), overlapS: 0 }),
  });
}

beforeAll(() => {
  speech = speechFixture();
});

describe('media validation with work of the caller meanwhile', () => {
  it('runs the work once ffprobe and both windows of the decode test are started', async () => {
    expect(children()).toEqual([]);
    let seen: string[] = [];
    const r = await validator().validate({
      file: speech.mp3,
      filename: 'speech.mp3',
      model: 'whisper-1',
      walked: await walkedSpeech(),
      whileChecking: () => {
        seen = children();
      },
    });
    // The ~32 s mp3 is tested at its start and at its walked end: two ffmpeg windows beside the probe.
    expect(seen).toEqual(['ffmpeg', 'ffmpeg', 'ffprobe']);
    expect(r.audio.duration_s).toBeCloseTo(speech.durationS, 0);
  });

  it('stops the probe and the decode test, and waits for them, when the work throws', async () => {
    let probeSettled = false;
    const real = createProber({ logger, timeoutS: 20 });
    const prober: Pick<Prober, 'probe'> = {
      probe: (file, opts) =>
        real.probe(file, opts).finally(() => {
          probeSettled = true;
        }),
    };
    const broken = new TypeError('the work failed');
    await expect(
      validator(prober).validate({
        file: speech.mp3,
        filename: 'speech.mp3',
        model: 'whisper-1',
        walked: await walkedSpeech(),
        whileChecking: () => {
          throw broken;
        },
      }),
    ).rejects.toBe(broken);
    // Settled before the validation answered: nothing is left reading the upload the caller now removes.
    expect(probeSettled).toBe(true);
    expect(children()).toEqual([]);
    // And the validator still serves.
    const r = await validator().validate({
      file: speech.mp3,
      filename: 'speech.mp3',
      model: 'whisper-1',
      walked: await walkedSpeech(),
    });
    expect(r.audio.format).toBe('mp3');
  });
});
