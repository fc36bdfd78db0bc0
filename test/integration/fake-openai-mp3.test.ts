import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { sliceMp3 } from '../../src/chunker/mp3-slicer.ts';
import { withOverlap } from '../../src/chunker/overlap-lead.ts';
import { createSlicer } from '../../src/chunker/slicer.ts';
import type { ChunkStream } from '../../src/chunker/types.ts';
import { audioDurationS, mp3DurationS, probeDurationS } from '../fake-openai/audio.ts';
import { countMp3Frames } from '../fake-openai/mp3.ts';
import { Pieces } from '../fake-openai/pieces.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI } from '../fake-openai/server.ts';
import type { DurationProbe, FakeOpenAI } from '../fake-openai/server.ts';

/*
 * The fake provider's in-process mp3 duration (frames counted) against ffprobe, on mp3s of every kind the service
 * sends and the tests use, made with ffmpeg here. The reference is the demuxer's own packet count
 * (`ffprobe -count_packets`: the audio frames, an info frame not among them) times the samples per frame: what a
 * decoder outputs. ffprobe's `format=duration`, the fake's figure before, is that same count where a Xing/Info
 * frame names it, and an estimate from size and bitrate where none does.
 */

const logger = pino({ level: 'silent' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-fake-mp3-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOISE = 'anoisesrc=color=pink:amplitude=0.3:sample_rate=44100:seed=7:duration=20';

function ffmpeg(args: readonly string[]): void {
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args]);
}

/** An mp3 of 20 s of stereo pink noise at 44.1 kHz, encoded with these arguments. */
function encoded(name: string, codecArgs: readonly string[], source = NOISE): string {
  const file = path.join(dir, name);
  ffmpeg(['-f', 'lavfi', '-i', source, '-ac', '2', '-c:a', 'libmp3lame', ...codecArgs, file]);
  return file;
}

function probe(file: string, entries: string): string {
  return execFileSync('ffprobe', ['-v', 'error', ...entries.split(' '), '-of', 'csv=p=0', file], {
    encoding: 'utf8',
  }).trim();
}

/** ffprobe's format=duration: the fake's figure before it counted frames. */
const formatDurationS = (file: string): number => Number(probe(file, '-show_entries format=duration'));

/** The audio frames the demuxer reads, times their samples, over the rate: to the microsecond. */
function packetSeconds(file: string): number {
  const [rate, packets] = probe(file, '-count_packets -show_entries stream=sample_rate,nb_read_packets').split(',');
  const perFrame = Number(rate) >= 32_000 ? 1152 : 576;
  return Math.round(((Number(packets) * perFrame) / Number(rate)) * 1e6) / 1e6;
}

const counted = (file: string): number | null => mp3DurationS(Pieces.of(readFileSync(file)));

async function chunkFiles(stream: ChunkStream): Promise<string[]> {
  const files: string[] = [];
  for await (const c of stream.chunks) {
    files.push(c.path);
    stream.release(c.index);
  }
  return files;
}

async function* listed(cuts: readonly number[]): AsyncGenerator<number> {
  yield* cuts;
}

const cbr = encoded('cbr.mp3', ['-b:a', '128k']);
const vbr = encoded('vbr.mp3', ['-q:a', '4']);

describe('the fake provider: mp3 duration by counting frames', () => {
  it("equals ffprobe's duration where a Xing/Info frame names the count: CBR, VBR, tags, a copy-cut, re-encoded", () => {
    const tagged = path.join(dir, 'tagged.mp3');
    // An ID3v2 tag with a frame in it, and an ID3v1 tag at the end.
    ffmpeg(['-i', cbr, '-c', 'copy', '-metadata', 'title=tagged', '-id3v2_version', '3', '-write_id3v1', '1', tagged]);
    const cut = path.join(dir, 'cut.mp3');
    ffmpeg(['-ss', '4', '-t', '9', '-i', vbr, '-c', 'copy', cut]);
    // The service's re-encoded chunk format: 16 kHz mono 32 kb/s (MPEG-2, 576 samples a frame).
    const reencoded = path.join(dir, 'reencoded.mp3');
    ffmpeg(['-i', cbr, '-ar', '16000', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '32k', reencoded]);
    for (const file of [cbr, vbr, tagged, cut, reencoded]) {
      const ours = counted(file);
      expect(countMp3Frames(Pieces.of(readFileSync(file)))?.infoFrame, file).toBe(true);
      expect(ours, file).toBe(packetSeconds(file));
      expect(ours, file).toBeCloseTo(formatDurationS(file), 6);
    }
  });

  it("counts what a decoder outputs where no Xing frame is: ffprobe's CBR estimate from the size is within 0.1 ms", () => {
    const bare = encoded('bare.mp3', ['-b:a', '128k', '-write_xing', '0', '-id3v2_version', '0']);
    const bareVbr = encoded('bare-vbr.mp3', ['-q:a', '4', '-write_xing', '0']);
    expect(countMp3Frames(Pieces.of(readFileSync(bare)))?.infoFrame).toBe(false);
    // The same audio as the files with an info frame: the same count.
    expect(counted(bare)).toBe(counted(cbr));
    expect(counted(bareVbr)).toBe(counted(vbr));
    expect(counted(bare)).toBe(packetSeconds(bare));
    expect(counted(bareVbr)).toBe(packetSeconds(bareVbr));
    // Frames of 417 and 418 bytes for 417.96 on average: the size misses the count by under a byte's worth.
    expect(Math.abs((counted(bare) ?? 0) - formatDurationS(bare))).toBeLessThan(1e-4);
  });

  it('counts the chunks the service cuts by stream copy, with and without their overlap lead-in', async () => {
    const signal = new AbortController().signal;
    const frameS = 1152 / 44_100;
    const cuts = [6, 13];
    const slice = (outDir: string, leadS?: number) =>
      sliceMp3({
        input: cbr,
        outDir,
        cuts: listed(cuts),
        lookahead: 2,
        maxDurationS: 3600,
        signal,
        logger,
        ...(leadS ? { leadS } : {}),
      });
    const plain = await chunkFiles(slice(mkdtempSync(path.join(dir, 'plain-'))));
    const led = await chunkFiles(slice(mkdtempSync(path.join(dir, 'led-')), 40 * frameS));
    // The ffmpeg segment muxer's chunks with withOverlap's lead in front (its info frame dropped).
    const segmented = createSlicer({ logger, timeoutS: 60 }).slice({
      ...{ input: vbr, demuxer: 'mp3', outDir: mkdtempSync(path.join(dir, 'seg-')), cutPoints: cuts, format: 'mp3' },
      ...{ mode: 'copy', lookahead: 8, maxDurationS: 3600, signal },
    });
    const joined = await chunkFiles(withOverlap(segmented, { overlapS: 40 * frameS, logger }));
    expect([plain.length, led.length, joined.length]).toEqual([3, 3, 3]);
    for (const file of [...plain, ...led, ...joined]) {
      expect(counted(file), file).not.toBeNull();
      expect(counted(file), file).toBe(packetSeconds(file));
    }
    // A lead of 40 frames on each chunk after the first.
    plain.forEach((file, i) =>
      expect(counted(led[i] ?? ''), file).toBeCloseTo((counted(file) ?? 0) + (i > 0 ? 40 * frameS : 0), 5),
    );
  });

  it('reads the same count from the bytes in pieces of any size as whole', () => {
    const whole = readFileSync(cbr);
    const pieces: Buffer[] = [];
    for (let at = 0, size = 1; at < whole.length; at += size, size = (size * 7) % 4093 || 1)
      pieces.push(whole.subarray(at, Math.min(whole.length, at + size)));
    expect(pieces.length).toBeGreaterThan(100);
    expect(countMp3Frames(new Pieces(pieces))).toEqual(countMp3Frames(Pieces.of(whole)));
  });

  it('leaves to ffprobe what it cannot count for certain: a cut-off frame, a stale frame count, junk, other formats', async () => {
    const whole = readFileSync(cbr);
    const first = countMp3Frames(Pieces.of(whole));
    const frameBytes = Math.floor((144 * 128_000) / 44_100);
    const truncated = whole.subarray(0, whole.length - 1000);
    // Cut at a frame boundary: whole frames, but fewer than the Info frame names.
    const audioStart = whole.length - (first?.audioBytes ?? 0);
    let boundary = audioStart;
    const pieces = Pieces.of(whole);
    for (let i = 0; i < 300; i++) boundary += frameBytes + ((pieces.u8(boundary + 2) >> 1) & 1);
    const stale = whole.subarray(0, boundary);
    const junk = Buffer.concat([whole.subarray(0, 50_000), Buffer.from('junk'), whole.subarray(50_000)]);
    const flac = path.join(dir, 'a.flac');
    ffmpeg(['-i', cbr, flac]);
    for (const [name, bytes] of [
      ['truncated', truncated],
      ['stale count', stale],
      ['junk', junk],
      ['flac', readFileSync(flac)],
    ] as const) {
      const audio = Pieces.of(bytes);
      expect(countMp3Frames(audio), name).toBeNull();
      const byFfprobe = await probeDurationS(audio);
      expect(byFfprobe, name).not.toBeNull();
      expect(await audioDurationS(audio), name).toBe(byFfprobe);
    }
    expect(countMp3Frames(Pieces.of(Buffer.from('not audio at all')))).toBeNull();
    expect(await audioDurationS(Pieces.of(Buffer.from('not audio at all')))).toBeNull();
  });
});

describe('the fake provider server: no ffprobe child for a plain mp3', () => {
  async function transcribe(fake: FakeOpenAI, file: string): Promise<number> {
    const form = new FormData();
    form.append('file', new Blob([readFileSync(file)]), 'chunk-00001.mp3');
    form.append('model', 'whisper-1');
    const res = await fetch(`${fake.url}/audio/transcriptions`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${FAKE_OPENAI_KEY}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  it("answers an mp3's duration with no ffprobe to run; probeWith 'ffprobe' still asks it (bad_audio without)", async () => {
    const path0 = process.env.PATH;
    const expected = packetSeconds(cbr);
    const probed = formatDurationS(cbr);
    const fakes: Record<DurationProbe, FakeOpenAI> = {
      'in-process': await startFakeOpenAI(),
      ffprobe: await startFakeOpenAI({ probeWith: 'ffprobe' }),
    };
    try {
      // Nothing to spawn: an ffprobe child would fail (ENOENT), which the fake answers as corrupted audio.
      process.env.PATH = path.join(dir, 'no-such-dir');
      expect(await transcribe(fakes['in-process'], cbr)).toBe(200);
      expect(fakes['in-process'].requests[0]?.durationS).toBe(expected);
      expect(await transcribe(fakes.ffprobe, cbr)).toBe(400);
      expect(fakes.ffprobe.requests[0]?.fault).toBeNull();
      process.env.PATH = path0;
      expect(await transcribe(fakes.ffprobe, cbr)).toBe(200);
      expect(fakes.ffprobe.requests[1]?.durationS).toBe(probed);
    } finally {
      process.env.PATH = path0;
      await Promise.all(Object.values(fakes).map((f) => f.close()));
    }
  });
});
