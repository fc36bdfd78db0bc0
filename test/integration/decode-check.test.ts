import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecodeChecker, measureDecodedDuration } from '../../src/chunker/decode-check.ts';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import { AppError } from '../../src/errors.ts';
import { GAP_S, speechFixture } from '../fixtures/speech.ts';
import type { SpeechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const checker = createDecodeChecker({ logger, timeoutS: 30 });

let dir: string;
let speech: SpeechFixture;
const at = (name: string): string => path.join(dir, name);

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'chunker-decode-'));
  speech = speechFixture();
  const mp3 = await readFile(speech.mp3);
  // Its Xing header still claims the whole 32 s; only the first half of the frames is there.
  await writeFile(at('half.mp3'), mp3.subarray(0, Math.floor(mp3.length / 2)));
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=16000:duration=90',
    '-c:a',
    'pcm_s16le',
    at('tone90.wav'),
  ]);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=s=64x64:d=2:r=10', '-c:v', 'mpeg4', at('video-only.mp4')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createDecodeChecker.check', () => {
  it('passes a file that decodes at its start and at its claimed end', async () => {
    const r = await checker.check(speech.mp3, { demuxer: 'mp3', durationS: speech.durationS, maxDurationS: 3600 });
    expect(r).toMatchObject({ ok: true });
    expect(r.ok && r.decodedS).toBeGreaterThan(9);
  });

  it('fails a file whose claimed end does not decode', async () => {
    const r = await checker.check(at('half.mp3'), { demuxer: 'mp3', durationS: speech.durationS, maxDurationS: 3600 });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/claimed end/);
  });

  it('fails a file with no audio stream', async () => {
    const r = await checker.check(at('video-only.mp4'), { demuxer: 'mov', durationS: 2, maxDurationS: 3600 });
    expect(r).toEqual({ ok: false, reason: 'the file has no audio stream' });
  });

  it('answers a stop only once both windows have ended', async () => {
    // ffmpeg reading at real speed (so it is still running when stopped); the end window's pipes are held by a
    // child that notes when it lets go of them, a second after ffmpeg is killed.
    const script = at('ffmpeg-slow-end.sh');
    await writeFile(
      script,
      [
        '#!/bin/sh',
        `case " $* " in *" -ss "*) (sleep 1; touch '${at('end-ended')}') & ;; esac`,
        `touch '${at('started')}.'$$`,
        'exec ffmpeg -re "$@"',
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
    const slow = createDecodeChecker({ logger, timeoutS: 30, ffmpegPath: script });
    const stop = new AbortController();
    const checking = slow.check(at('tone90.wav'), {
      demuxer: 'wav',
      durationS: 90,
      maxDurationS: 3600,
      signal: stop.signal,
    });
    const started = () => readdirSync(dir).filter((f) => f.startsWith('started.')).length;
    await until(
      () => started() === 2,
      () => `both windows started (${started()})`,
    );
    stop.abort();
    const err: unknown = await checking.catch((e: unknown) => e);
    expect((err as AppError).code).toBe('CANCELLED');
    // Not before the end window let go: the caller may remove the file once the check answered.
    expect(existsSync(at('end-ended'))).toBe(true);
  });

  it('fails when the forced demuxer cannot read the file', async () => {
    const r = await checker.check(speech.wav, { demuxer: 'flac', durationS: speech.durationS, maxDurationS: 3600 });
    expect(r.ok).toBe(false);
  });
});

describe('measureDecodedDuration', () => {
  it('returns the seconds that decode, not what the header claims', async () => {
    const full = await measureDecodedDuration(speech.mp3, { demuxer: 'mp3', maxDurationS: 3600 });
    expect(Math.abs(full - speech.durationS)).toBeLessThan(0.1);
    const half = await measureDecodedDuration(at('half.mp3'), { demuxer: 'mp3', maxDurationS: 3600 });
    expect(half).toBeGreaterThan(speech.durationS * 0.4);
    expect(half).toBeLessThan(speech.durationS * 0.6);
  });

  it('stops one second past maxDurationS and says the file is over the limit', async () => {
    const r = await checker.measureDecodedDuration(at('tone90.wav'), { demuxer: 'wav', maxDurationS: 60 });
    expect(r.decodedS).toBeCloseTo(61, 1);
    expect(r.overLimit).toBe(true);
  });

  it('gives the same length in demux-only mode', async () => {
    const r = await checker.measureDecodedDuration(at('half.mp3'), {
      demuxer: 'mp3',
      maxDurationS: 3600,
      mode: 'demux',
    });
    const decoded = await measureDecodedDuration(at('half.mp3'), { demuxer: 'mp3', maxDurationS: 3600 });
    expect(Math.abs(r.decodedS - decoded)).toBeLessThan(0.1);
  });

  it('throws UNSUPPORTED_MEDIA for a file with no audio stream', async () => {
    const err: unknown = await measureDecodedDuration(at('video-only.mp4'), { demuxer: 'mov', maxDurationS: 60 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).details).toEqual({ reason: 'no_audio_stream' });
  });

  it('throws CANCELLED when the signal aborts', async () => {
    const err: unknown = await measureDecodedDuration(speech.mp3, {
      demuxer: 'mp3',
      maxDurationS: 60,
      signal: AbortSignal.abort(),
    }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('CANCELLED');
  });
});

describe('createSilenceDetector', () => {
  it('finds the pauses between the fixture clips', async () => {
    const detector = createSilenceDetector({ logger, timeoutS: 30 });
    const silences = await detector.detectSilences(speech.mp3, { demuxer: 'mp3', maxDurationS: 3600 });
    for (const start of speech.clipStarts.slice(1)) {
      const middleOfGap = start - GAP_S / 2;
      expect(silences.some((s) => s.start <= middleOfGap && s.end >= middleOfGap)).toBe(true);
    }
    silences.forEach((s, i) => {
      expect(s.end).toBeGreaterThanOrEqual(s.start + 0.3 - 0.01);
      if (i > 0) expect(s.start).toBeGreaterThanOrEqual(silences[i - 1]?.end ?? 0);
    });
  });

  it('finds no silence in a continuous tone', async () => {
    const detector = createSilenceDetector({ logger, timeoutS: 30 });
    expect(await detector.detectSilences(at('tone90.wav'), { demuxer: 'wav', maxDurationS: 3600 })).toEqual([]);
  });
});
