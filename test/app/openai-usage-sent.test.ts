import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { storeOf } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

/*
 * Continuous sound (pink noise, no pause anywhere): every cut is hard, so every chunk after the first starts with
 * the end of the one before, and a provider billing by the second bills those seconds twice. The usage block of
 * the OpenAI-compatible answer says what was billed: the seconds the provider received, not the recording's.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-usage-sent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DURATION_S = 61.5;
const wav = path.join(dir, 'noise.wav');
execFileSync('ffmpeg', [
  ...['-nostdin', '-v', 'error', '-y'],
  ...['-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.3:sample_rate=16000:seed=5:duration=${DURATION_S}`],
  ...['-ac', '1', '-c:a', 'pcm_s16le', wav],
]);

interface Answer {
  text: string;
  usage: { type: string; seconds: number };
  duration?: number;
}

describe('the usage of an OpenAI-compatible answer on continuous audio (every cut hard, 2 s overlap)', () => {
  const start = useFakeProviderService({ CHUNK_SECONDS: '10', CHUNK_OVERLAP_SECONDS: '2' });

  it.each(['json', 'verbose_json'])('%s: usage.seconds is the seconds the provider received', async (format) => {
    const { fake, server } = await start();
    const form = new FormData();
    form.append('file', new Blob([readFileSync(wav)]), 'noise.wav');
    form.append('model', 'whisper-1');
    form.append('response_format', format);
    const res = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    const jobId = res.headers.get('x-job-id') ?? '';

    const store = await storeOf(server.dataDir);
    const job = await store.getJob(jobId);
    await store.close();
    // Every cut fell on no pause: the chunks carry the 2 s overlap (16 kHz WAV, exact to the sample).
    expect(job?.chunkPlan).toMatchObject({ overlapS: 2 });
    expect(job?.chunkPlan?.hardCuts).toBeGreaterThan(0);

    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    // 10, 10, 10, 10, 10 and 11.5 s (the last 1.5 s is merged): 5 leads of 2 s.
    expect(sent.length).toBe(6);
    const receivedS = Math.round(sent.reduce((sum, r) => sum + (r.durationS ?? Number.NaN), 0) * 1000) / 1000;
    expect(receivedS).toBeCloseTo(DURATION_S + 5 * 2, 2);
    expect(body.usage).toEqual({ type: 'duration', seconds: Math.ceil(receivedS) });
    expect(body.usage.seconds).toBe(72);
    // The recording's own length is still its duration.
    if (format === 'verbose_json') expect(body.duration).toBeCloseTo(DURATION_S, 2);
  });
});
