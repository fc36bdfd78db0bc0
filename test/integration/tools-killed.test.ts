import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecodeChecker } from '../../src/chunker/decode-check.ts';
import { createProber } from '../../src/chunker/ffprobe.ts';
import { createSilenceDetector } from '../../src/chunker/silence-detect.ts';
import { speechFixture } from '../fixtures/speech.ts';

const logger = pino({ level: 'silent' });
const speech = speechFixture();
let dir: string;
/** A tool that is killed with SIGKILL as it runs, as the kernel's OOM killer or an operator's kill -9 ends one. */
let killed: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tools-killed-'));
  killed = path.join(dir, 'killed-tool');
  await writeFile(killed, '#!/bin/sh\necho "partial output" >&2\nkill -KILL $$\n');
  await chmod(killed, 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The file is sound: a tool killed from outside is the service's failure (500 INTERNAL), never MEDIA_CORRUPT. */
const toolKilled = (tool: string) => ({
  code: 'INTERNAL',
  statusCode: 500,
  message: expect.stringMatching(new RegExp(`^${tool} was killed \\(SIGKILL\\) while .*the file is not at fault\\.$`)),
  details: { reason: 'tool_killed', signal: 'SIGKILL' },
});

describe('a media tool killed from outside', () => {
  it('fails a silence scan with INTERNAL tool_killed, not MEDIA_CORRUPT', async () => {
    const detector = createSilenceDetector({ logger, timeoutS: 30, ffmpegPath: killed });
    await expect(detector.detectSilences(speech.wav, { demuxer: 'wav', maxDurationS: 3600 })).rejects.toMatchObject(
      toolKilled('ffmpeg'),
    );
  });

  it('fails the decode check with INTERNAL tool_killed, not MEDIA_CORRUPT', async () => {
    const checker = createDecodeChecker({ logger, timeoutS: 30, ffmpegPath: killed });
    await expect(
      checker.check(speech.wav, { demuxer: 'wav', durationS: speech.durationS, maxDurationS: 3600 }),
    ).rejects.toMatchObject(toolKilled('ffmpeg'));
  });

  it('fails the probe with INTERNAL tool_killed, not UNSUPPORTED_MEDIA', async () => {
    const prober = createProber({ logger, timeoutS: 5, ffprobePath: killed });
    await expect(prober.probe(speech.wav)).rejects.toMatchObject(toolKilled('ffprobe'));
  });
});
