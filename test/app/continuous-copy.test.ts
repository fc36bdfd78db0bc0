import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isInfoFrame, mp3FrameAt } from '../../src/chunker/mp3-frames.ts';
import { id3v2Size } from '../../src/chunker/seek-exact.ts';
import type { FakeTranscript } from '../fake-openai/audio.ts';
import { getJson, storeOf, upload, waitForJob } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

/*
 * Continuous sound (two tones under pink noise, no pause anywhere): every cut is hard, so every chunk after the
 * first carries the end of the one before. An mp3 upload must stay on the copy path all the same: each chunk's
 * audio is one run of the upload's own frames, the lead-in included.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-continuous-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DURATION_S = 60;
const mp3 = path.join(dir, 'continuous.mp3');
execFileSync('ffmpeg', [
  ...['-nostdin', '-v', 'error', '-y'],
  ...['-f', 'lavfi', '-i', `sine=frequency=196:sample_rate=44100:duration=${DURATION_S}`],
  ...['-f', 'lavfi', '-i', `sine=frequency=247:sample_rate=44100:duration=${DURATION_S}`],
  ...['-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.1:sample_rate=44100:seed=3:duration=${DURATION_S}`],
  ...['-filter_complex', '[0:a][1:a][2:a]amix=inputs=3:normalize=0,aformat=channel_layouts=stereo[out]'],
  ...['-map', '[out]', '-c:a', 'libmp3lame', '-b:a', '128k', mp3],
]);
const source = readFileSync(mp3);
const FRAME_S = 1152 / 44_100;

/** The audio frames of an mp3 held in memory: where they start and end, and how many there are. */
function audioFrames(buf: Buffer): { start: number; end: number; count: number } {
  let pos = id3v2Size(buf);
  let start = -1;
  let count = 0;
  for (let f = mp3FrameAt(buf, pos); f && pos + f.size <= buf.length; f = mp3FrameAt(buf, pos)) {
    if (start === -1 && count === 0 && isInfoFrame(buf.subarray(pos, pos + f.size))) {
      pos += f.size;
      continue;
    }
    if (start === -1) start = pos;
    count += 1;
    pos += f.size;
  }
  return { start, end: pos, count };
}

const sourceFrames = audioFrames(source);
/** Word k is said at k * WORD_S for WORD_LEN_S; a chunk hears the words wholly inside its audio. */
const WORD_S = 0.5;
const WORD_LEN_S = 0.25;
const allWords = Array.from({ length: Math.floor((DURATION_S - WORD_LEN_S) / WORD_S) + 1 }, (_, k) => `w${k}`);

interface Heard {
  copied: boolean;
  startS: number;
  seconds: number;
}

/**
 * A provider that "hears" where a chunk is by finding its frames in the upload: a chunk that is a byte-exact
 * run of the upload's frames gets the words of that stretch, timed from the start of the file it was sent.
 */
function locate(bytes: Buffer, heard: Heard[]): FakeTranscript {
  const own = audioFrames(bytes);
  const audio = bytes.subarray(own.start, own.end);
  const at = source.indexOf(audio.subarray(0, 4096));
  const copied = at >= 0 && source.subarray(at, at + audio.length).equals(audio);
  if (!copied) {
    heard.push({ copied, startS: Number.NaN, seconds: own.count * FRAME_S });
    return { tag: 'x', text: '', segments: [] };
  }
  const framesBefore = audioFrames(source.subarray(0, at)).count;
  const startS = framesBefore * FRAME_S;
  const seconds = own.count * FRAME_S;
  heard.push({ copied, startS, seconds });
  const segments = allWords
    .map((text, k) => ({ text, t: k * WORD_S }))
    .filter(({ t }) => t >= startS && t + WORD_LEN_S <= startS + seconds)
    .map(({ text, t }) => ({ start: t - startS, end: t - startS + WORD_LEN_S, text }));
  return { tag: 'located', text: segments.map((s) => s.text).join(' '), segments };
}

describe('continuous sound in an mp3 upload (no pause: every cut is hard)', () => {
  const start = useFakeProviderService({ CHUNK_SECONDS: '10', CHUNK_OVERLAP_SECONDS: '2' });

  it('copies every chunk from the upload, each after the first with its lead-in, and says every word once', async () => {
    expect(sourceFrames.count).toBeGreaterThan(DURATION_S / FRAME_S - 2);
    const heard: Heard[] = [];
    const { fake, server } = await start({ transcript: ({ bytes }) => locate(bytes, heard) });
    const created = await upload(server.url, mp3);
    expect(created.status).toBe(202);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');

    const store = await storeOf(server.dataDir);
    const plan = (await store.getJob(job.id))?.chunkPlan;
    const rows = await store.listChunks(job.id);
    await store.close();
    // 2 s rounded to whole 26 ms frames: 77 frames.
    const leadS = 77 * FRAME_S;
    // Cut while its cut points are planned: the first chunk did not wait for the whole plan.
    expect(plan).toMatchObject({ mode: 'copy', format: 'mp3', lazy: true, hardCuts: null });
    expect(plan?.overlapS).toBeCloseTo(leadS, 5);
    expect(rows.length).toBe(6);

    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    expect(sent.map((r) => path.extname(r.filename ?? ''))).toEqual(rows.map(() => '.mp3'));
    // Each chunk is a byte-exact run of the upload's frames (a stream copy), starting `leadS` before its cut.
    expect(heard.every((h) => h.copied)).toBe(true);
    const byStart = [...heard].sort((a, b) => a.startS - b.startS);
    rows.forEach((row, i) => {
      const h = byStart[i] as Heard;
      const lead = i === 0 ? 0 : leadS;
      expect(h.startS).toBeCloseTo(row.startS - lead, 3);
      expect(h.seconds).toBeCloseTo(row.durationS + lead, 3);
    });

    const t = (await getJson<{ text: string }>(`${server.url}/v1/jobs/${job.id}/transcript?format=json`)).body;
    // Every word once, in order: none lost at a cut (the lead-in holds it), none said twice (the stitcher drops it).
    expect(t.text.split(' ')).toEqual(allWords);
  });
});
