import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecodeChecker } from '../../src/chunker/decode-check.ts';
import { measureMp3Stream, walkMp3Duration } from '../../src/chunker/mp3-duration.ts';
import { createProber } from '../../src/chunker/ffprobe.ts';
import { judgeDuration } from '../../src/validate/media-validator.ts';
import { apeTag, encodeSweep, ffmpegQuiet } from '../support/mp3-files.ts';

/*
 * The frame walk against ffmpeg's own demux figure (`-c copy -f null`, what the validator measured before), on
 * mp3s that ffmpeg makes: the walk must give the same seconds, or give way to ffmpeg where it is not sure.
 */

const MAX_S = 600;
let dir: string;
const at = (name: string) => path.join(dir, name);

const ffmpeg = ffmpegQuiet;

/** ffmpeg's demux figure: the last out_time of `-progress`, as decode-check's ffmpeg path reads it. */
function demuxSeconds(file: string): number {
  const out = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-f', 'mp3', '-i', file, '-map', '0:a:0'].concat([
      '-c:a',
      'copy',
      '-f',
      'null',
      '-',
    ]),
    { encoding: 'utf8' },
  );
  const times = [...out.matchAll(/^out_time_us=(\d+)$/gm)].map((m) => Number(m[1]) / 1e6);
  return Math.max(0, ...times);
}

/** 20 s of a sweep (so VBR frames vary in size), encoded with the given output options. */
function encode(name: string, options: string[], seconds = 20): string {
  encodeSweep(at(name), options, seconds);
  return at(name);
}

const walk = (file: string, maxDurationS = MAX_S) => walkMp3Duration(file, { maxDurationS });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mp3-duration-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('walkMp3Duration, compared with ffmpeg demuxing the same file', () => {
  it.each([
    ['CBR 128k stereo 44.1 kHz', 'cbr.mp3', ['-b:a', '128k', '-ac', '2']],
    ['VBR with a Xing header', 'vbr.mp3', ['-q:a', '4']],
    ['VBR without a Xing header', 'vbr-noxing.mp3', ['-q:a', '4', '-write_xing', '0']],
    ['CBR mono 22.05 kHz (MPEG-2)', 'mono22.mp3', ['-b:a', '32k', '-ac', '1', '-ar', '22050']],
    ['CBR 8 kHz (MPEG-2.5)', 'mono8.mp3', ['-b:a', '16k', '-ac', '1', '-ar', '8000']],
    [
      'an ID3v2 tag at the start',
      'id3v2.mp3',
      ['-b:a', '64k', '-id3v2_version', '4', '-metadata', 'title=T'.repeat(300)],
    ],
    ['an ID3v1 tag at the end', 'id3v1.mp3', ['-b:a', '64k', '-write_id3v1', '1', '-metadata', 'title=Talk']],
  ])('%s: the same seconds', async (_what, name, options) => {
    const file = encode(name, options);
    const walked = await walk(file);
    expect(walked.ok).toBe(true);
    if (!walked.ok) return;
    expect(walked.overLimit).toBe(false);
    // The same packets: equal to the microsecond ffmpeg prints.
    expect(walked.seconds).toBeCloseTo(demuxSeconds(file), 5);
  });

  it('an APE tag (and an ID3v1 tag after it) at the end: the same seconds', async () => {
    const plain = await readFile(encode('ape-src.mp3', ['-b:a', '64k']));
    const id3v1 = Buffer.concat([Buffer.from('TAG', 'latin1'), Buffer.alloc(125)]);
    for (const [name, tail] of [
      ['ape.mp3', apeTag()],
      ['ape-id3v1.mp3', Buffer.concat([apeTag(), id3v1])],
    ] as const) {
      await writeFile(at(name), Buffer.concat([plain, tail]));
      const walked = await walk(at(name));
      expect(walked).toMatchObject({ ok: true });
      if (walked.ok) expect(walked.seconds).toBeCloseTo(demuxSeconds(at(name)), 5);
    }
  });

  it('stops a little past the limit and says the file is too long', async () => {
    const file = encode('long.mp3', ['-b:a', '32k'], 30);
    const walked = await walk(file, 10);
    expect(walked).toMatchObject({ ok: true, overLimit: true });
    if (walked.ok) expect(walked.seconds).toBeGreaterThan(11);
    if (walked.ok) expect(walked.seconds).toBeLessThan(11.1);
  });

  it('gives way to ffmpeg for a cut-off last frame, junk between frames, and another layer', async () => {
    const cbr = await readFile(encode('src.mp3', ['-b:a', '128k']));
    await writeFile(at('truncated.mp3'), cbr.subarray(0, Math.floor(cbr.length * 0.6) + 100));
    await writeFile(
      at('junk.mp3'),
      Buffer.concat([cbr.subarray(0, 40_000), Buffer.from('not audio '.repeat(50)), cbr.subarray(40_000)]),
    );
    ffmpeg(['-f', 'lavfi', '-i', 'sine=d=5', '-c:a', 'mp2', '-f', 'mp2', at('layer2.mp3')]);
    expect(await walk(at('truncated.mp3'))).toMatchObject({ ok: false, reason: expect.stringMatching(/cut off/) });
    expect(await walk(at('junk.mp3'))).toMatchObject({ ok: false, reason: expect.stringMatching(/not a layer III/) });
    expect(await walk(at('layer2.mp3'))).toMatchObject({ ok: false });

    // Through the decode checker: the walk gives way and the figure is ffmpeg's own.
    const checker = createDecodeChecker({ logger: pino({ level: 'silent' }), timeoutS: 60 });
    for (const name of ['truncated.mp3', 'junk.mp3']) {
      const measured = await checker.measureDecodedDuration(at(name), {
        demuxer: 'mp3',
        maxDurationS: MAX_S,
        mode: 'demux',
      });
      expect(measured.decodedS).toBeCloseTo(demuxSeconds(at(name)), 5);
    }
  });

  it('is what the decode checker measures an mp3 by: no ffmpeg runs for a plain one', async () => {
    const file = encode('routed.mp3', ['-b:a', '64k']);
    // An ffmpeg that cannot start: only the walk can answer.
    const checker = createDecodeChecker({
      logger: pino({ level: 'silent' }),
      timeoutS: 60,
      ffmpegPath: '/nonexistent/ffmpeg',
    });
    const measured = await checker.measureDecodedDuration(file, { demuxer: 'mp3', maxDurationS: MAX_S, mode: 'demux' });
    expect(measured).toMatchObject({ overLimit: false, errorLines: 0 });
    expect(measured.decodedS).toBeCloseTo(demuxSeconds(file), 5);
    // 'decode' still runs the decoder over every frame: the walk does not stand in for it.
    await expect(
      checker.measureDecodedDuration(file, { demuxer: 'mp3', maxDurationS: MAX_S, mode: 'decode' }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it("reads the decode test's end window of an mp3 from the frame the walk finds, not by a seek by time", async () => {
    const file = encode('end-window.mp3', ['-b:a', '64k'], 30);
    // An ffmpeg that notes its arguments, then runs the real one.
    const argsLog = at('ffmpeg-args.txt');
    const wrapper = at('ffmpeg-wrapper.sh');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${argsLog}'\nexec ffmpeg "$@"\n`, { mode: 0o755 });
    const checker = createDecodeChecker({ logger: pino({ level: 'silent' }), timeoutS: 60, ffmpegPath: wrapper });
    const durationS = demuxSeconds(file);
    expect(await checker.check(file, { demuxer: 'mp3', durationS, maxDurationS: MAX_S })).toMatchObject({ ok: true });
    const runs = (await readFile(argsLog, 'utf8')).trim().split('\n');
    expect(runs).toHaveLength(2);
    const end = runs.find((r) => r.includes('-skip_initial_bytes'));
    expect(end).toBeDefined();
    expect(runs.some((r) => r.includes(' -ss '))).toBe(false);
    // From the frame at the claimed end - 5 s: that much decodes, as with the seek.
    const walkedTo = Number(/-skip_initial_bytes (\d+)/.exec(end ?? '')?.[1]);
    expect(walkedTo).toBeGreaterThan(0);

    // A header claiming more than the frames hold: no frame there, so the seek by time says so as before.
    const claimsMore = await checker.check(file, { demuxer: 'mp3', durationS: durationS + 60, maxDurationS: MAX_S });
    expect(claimsMore).toMatchObject({ ok: false, reason: expect.stringMatching(/claimed end/) });
  });

  it('takes no ID3v2 header ffmpeg does not take for one: the audio it would skip is audio to ffmpeg', async () => {
    // "ID3" and a size whose last byte has its high bit set: not a tag to ffmpeg (ff_id3v2_match), which demuxes
    // the 20 s the size covers and the 4 s after them. Skipping them, the walk found 4 s: a 24 s recording under
    // a 15 s limit.
    const options = ['-b:a', '32k', '-ac', '1', '-write_xing', '0', '-id3v2_version', '0'];
    let hidden = await readFile(encode('hidden.mp3', options, 20));
    while ((hidden.length & 0x80) === 0) hidden = Buffer.concat([hidden, Buffer.alloc(1)]);
    const size = hidden.length;
    const head = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, size >> 14, (size >> 7) & 0x7f, (size & 0x7f) | 0x80]);
    const file = at('false-id3.mp3');
    await writeFile(file, Buffer.concat([head, hidden, await readFile(encode('shown.mp3', options, 4))]));
    expect(demuxSeconds(file)).toBeGreaterThan(23);
    const walked = await walk(file, 15);
    // The same seconds, or it gives way to ffmpeg.
    if (walked.ok) expect(walked.seconds).toBeCloseTo(demuxSeconds(file), 5);
    const streamed = measureMp3Stream({ maxDurationS: 15 });
    streamed.push(await readFile(file));
    const result = streamed.result();
    if (result?.walk.ok) expect(result.walk.seconds).toBeCloseTo(demuxSeconds(file), 5);
  });

  it('catches a Xing header that lies about the length, as the demux did', async () => {
    const file = encode('lying-src.mp3', ['-q:a', '4'], 20);
    const mp3 = await readFile(file);
    const tag = Math.max(mp3.indexOf('Xing'), mp3.indexOf('Info'));
    expect(mp3.readUInt32BE(tag + 4) & 1).toBe(1);
    const frames = mp3.readUInt32BE(tag + 8);
    const prober = createProber({ logger: pino({ level: 'silent' }), timeoutS: 30 });
    for (const [name, claimed] of [
      ['claims-long.mp3', frames * 30], // ~10 min claimed: a cut-off file, or a lie to get a big budget
      ['claims-short.mp3', Math.floor(frames / 20)], // ~1 s claimed: a lie to pass the length limit
    ] as const) {
      const lying = Buffer.from(mp3);
      lying.writeUInt32BE(claimed, tag + 8);
      await writeFile(at(name), lying);
      const headerS = (await prober.probe(at(name))).durationS;
      const whole = await walk(at(name), 900);
      if (!whole.ok) throw new Error(whole.reason);
      // The frames, not the header: ffmpeg's packets say the same.
      expect(whole.seconds).toBeCloseTo(demuxSeconds(at(name)), 5);
      if (claimed > frames) {
        expect(headerS).toBeGreaterThan(500);
        const measured = { decodedS: whole.seconds, overLimit: whole.overLimit, errorLines: 0 };
        expect(() => judgeDuration(headerS, measured, 900)).toThrow(expect.objectContaining({ code: 'MEDIA_CORRUPT' }));
      } else {
        // 20 s of audio against a 15 s limit, whatever the header's ~1 s says.
        expect(headerS).toBeLessThan(2);
        const limited = await walk(at(name), 15);
        expect(limited).toMatchObject({ ok: true, overLimit: true });
        if (!limited.ok) return;
        const measured = { decodedS: limited.seconds, overLimit: limited.overLimit, errorLines: 0 };
        expect(() => judgeDuration(headerS, measured, 15)).toThrow(
          expect.objectContaining({ code: 'DURATION_OUT_OF_RANGE' }),
        );
      }
    }
  });
});
