import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { until } from '../support/until.ts';
import { getJson, jobFiles, removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';

interface TranscriptJson {
  job_id: string;
  text: string;
  duration_s: number;
  segments: Array<{ start: number; end: number; text: string; chunk: number }>;
}

function parseCues(body: string, separator: ',' | '.'): Array<{ start: number; end: number; text: string }> {
  const sep = separator === ',' ? ',' : '\\.';
  const re = new RegExp(
    `(\\d{2}):(\\d{2}):(\\d{2})${sep}(\\d{3}) --> (\\d{2}):(\\d{2}):(\\d{2})${sep}(\\d{3})\\n([^\\n]+(?:\\n[^\\n]+)*)`,
    'g',
  );
  const secs = (h: string, m: string, s: string, ms: string) =>
    Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;
  return [...body.matchAll(re)].map((m) => ({
    start: secs(m[1]!, m[2]!, m[3]!, m[4]!),
    end: secs(m[5]!, m[6]!, m[7]!, m[8]!),
    text: m[9]!,
  }));
}

describe('the service end to end with the local engine', () => {
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', CHUNK_SECONDS: '10' });
  });
  afterAll(async () => {
    await server.close();
    await removeDir(server.dataDir);
  });

  it('transcribes a multi-chunk recording with words at the right absolute times', async () => {
    const created = await upload(server.url, speech.mp3, { language: 'en' });
    expect(created.status).toBe(202);
    expect(created.headers.get('location')).toBe(`/v1/jobs/${created.body.id}`);
    expect(created.body.id).toMatch(/^job_[A-Za-z0-9_-]{22}$/);
    expect(created.body.status).toBe('queued');
    expect(created.body.audio).toMatchObject({ format: 'mp3', codec: 'mp3', sample_rate: 44100, channels: 2 });

    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    expect(job.progress.chunks_total).toBeGreaterThanOrEqual(3);
    expect(job.progress.chunks_done).toBe(job.progress.chunks_total);
    expect(job.progress.percent).toBe(100);
    // percent never goes down while polling
    expect(job.percentsSeen).toEqual([...job.percentsSeen].sort((a, b) => a - b));

    const { status, body } = await getJson<TranscriptJson>(`${server.url}/v1/jobs/${job.id}/transcript?format=json`);
    expect(status).toBe(200);
    expect(body.segments.length).toBeGreaterThan(3);
    const chunksUsed = new Set(body.segments.map((s) => s.chunk));
    expect(chunksUsed.size).toBeGreaterThanOrEqual(3);
    for (const [i, seg] of body.segments.entries()) {
      expect(seg.start).toBeGreaterThanOrEqual(0);
      expect(seg.end).toBeLessThanOrEqual(body.duration_s + 0.01);
      if (i > 0) expect(seg.start).toBeGreaterThanOrEqual(body.segments[i - 1]!.start);
    }
    // Words pocketsphinx reliably recognises in each clip, and the clip's place in the file.
    const expectations = [
      { word: 'consider', from: speech.clipStarts[0]!, to: speech.clipStarts[1]! },
      { word: 'selfish', from: speech.clipStarts[2]!, to: speech.clipStarts[3]! },
      { word: 'respectable', from: speech.clipStarts[3]!, to: speech.clipStarts[4]! },
      { word: 'even', from: speech.clipStarts[4]!, to: speech.durationS },
    ];
    for (const { word, from, to } of expectations) {
      const seg = body.segments.find((s) => new RegExp(`\\b${word}\\b`).test(s.text.toLowerCase()));
      expect(seg, `a segment with "${word}" in ${JSON.stringify(body.segments)}`).toBeDefined();
      expect(seg!.start).toBeGreaterThanOrEqual(from - 1);
      expect(seg!.end).toBeLessThanOrEqual(to + 1);
    }

    const srt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=srt`)).text();
    const srtCues = parseCues(srt, ',');
    expect(srtCues.length).toBeGreaterThan(3);
    expect(srtCues.every((c) => c.end >= c.start)).toBe(true);
    expect(
      srtCues
        .map((c) => c.text)
        .join(' ')
        .toLowerCase(),
    ).toContain('respectable');

    const vttRes = await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=vtt`);
    expect(vttRes.headers.get('content-type')).toContain('text/vtt');
    const vtt = await vttRes.text();
    expect(vtt.startsWith('WEBVTT')).toBe(true);
    expect(parseCues(vtt, '.').length).toBe(srtCues.length);

    const txt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=txt`)).text();
    expect(txt.toLowerCase()).toContain('selfish');

    // The upload and chunk files go once the job has ended (just after its end is stored, so a stop in between
    // can resume from them); the job row and transcript stay.
    const leftovers = async () =>
      (await jobFiles(server.dataDir)).filter((f) => f.includes('upload') || f.endsWith('.wav'));
    await until(
      async () => (await leftovers()).length === 0,
      'the upload and chunk files to be removed after the job ended',
      {
        timeoutMs: 10_000,
      },
    );
  });

  it('refuses a language the engine does not have at upload, naming the ones it has, and leaves nothing behind', async () => {
    const before = await jobFiles(server.dataDir);
    const listed = (await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs?limit=100`)).body.items.length;
    for (const language of ['de', 'fr']) {
      const res = await upload(server.url, speech.wav, { language });
      expect(res.status, language).toBe(400);
      expect(res.body.error).toEqual({
        code: 'INVALID_FIELD',
        message: `language "${language}" is not recognised by model "pocketsphinx-en-us"; it recognises: en`,
        details: { field: 'language', languages: ['en'] },
      });
    }
    expect(await jobFiles(server.dataDir)).toEqual(before);
    expect((await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs?limit=100`)).body.items).toHaveLength(listed);
    // English and no language at all (the engine's own) are still taken.
    const dry = await upload(server.url, speech.wav, { language: 'en', dry_run: 'true' });
    expect(dry.status).toBe(200);
  });
});
