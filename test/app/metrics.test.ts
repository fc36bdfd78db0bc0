import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';
import { parsePromText, sumOf, type PromSample } from '../support/prom-text.ts';
import { until } from '../support/until.ts';

async function scrape(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; samples: PromSample[] }> {
  const res = await fetch(`${url}/metrics`, { headers });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), samples: res.ok ? parsePromText(text) : [] };
}

describe('GET /metrics after a real job against the fake OpenAI server', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      RATE_LIMIT_RPM: '6000',
      RATE_LIMIT_BURST: '50',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
    });
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
    await removeDir(server.dataDir);
  });

  it('counts the chunks, the injected 503 and its retry, the upload, the cost and the audio of the job', async () => {
    fake.script([{ type: 'server_error', status: 503 }]);
    const created = await upload(server.url, speech.mp3);
    expect(created.status).toBe(202);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const chunks = job.progress.chunks_total;
    expect(chunks).toBeGreaterThanOrEqual(6);
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toHaveLength(chunks + 1);

    // The runner reports the job's end just after the store says completed: scrape until it has.
    let scraped = await scrape(server.url);
    await until(
      async () => {
        if (sumOf(scraped.samples, 'chunkscribe_jobs_ended_total') !== undefined) return true;
        scraped = await scrape(server.url);
        return false;
      },
      'chunkscribe_jobs_ended_total in /metrics',
      { everyMs: 50 },
    );
    const { status, type, samples } = scraped;
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const openai = { provider: 'openai', model: 'whisper-1' };

    expect(sumOf(samples, 'chunkscribe_chunk_transcription_seconds_count', { ...openai, outcome: 'success' })).toBe(chunks);
    expect(sumOf(samples, 'chunkscribe_chunk_transcription_seconds_count', { outcome: 'failed' })).toBeUndefined();
    expect(sumOf(samples, 'chunkscribe_chunk_transcription_seconds_bucket', { ...openai, outcome: 'success', le: '+Inf' })).toBe(chunks);
    expect(sumOf(samples, 'chunkscribe_provider_requests_total', { ...openai, outcome: 'success', error_class: 'none' })).toBe(chunks);
    const errors = samples.filter((s) => s.name === 'chunkscribe_provider_requests_total' && s.labels.outcome === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.value).toBe(1);
    expect(sumOf(samples, 'chunkscribe_provider_retries_total', { provider: 'openai', error_class: errors[0]!.labels.error_class! })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_provider_retries_total')).toBe(1);

    expect(sumOf(samples, 'chunkscribe_jobs', { status: 'completed' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_jobs', { status: 'processing' })).toBe(0);
    expect(sumOf(samples, 'chunkscribe_jobs_accepted_total', openai)).toBe(1);
    const cost = sumOf(samples, 'chunkscribe_estimated_cost_usd_total', openai);
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeCloseTo((created.body.estimate as { cost_usd: number }).cost_usd, 9);
    expect(sumOf(samples, 'chunkscribe_upload_bytes_total')).toBe(statSync(speech.mp3).size);
    expect(sumOf(samples, 'chunkscribe_jobs_ended_total', { status: 'completed' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_audio_bytes_processed_total', { status: 'completed' })).toBe(statSync(speech.mp3).size);
    expect(sumOf(samples, 'chunkscribe_audio_seconds_processed_total', { status: 'completed' })).toBeCloseTo(speech.durationS, 0);

    expect(sumOf(samples, 'chunkscribe_limiter_queued')).toBe(0);
    expect(sumOf(samples, 'chunkscribe_limiter_running')).toBe(0);
    const tokens = sumOf(samples, 'chunkscribe_limiter_tokens');
    expect(tokens).toBeGreaterThanOrEqual(0);
    expect(tokens).toBeLessThanOrEqual(50);
    expect([0, 1, 2]).toContain(sumOf(samples, 'chunkscribe_pressure_level'));
    expect(sumOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sumOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const guarded = await startServer({ OPENAI_API_KEY: FAKE_OPENAI_KEY, OPENAI_BASE_URL: fake.url, METRICS_TOKEN: 'scrape-secret' });
    try {
      const none = await fetch(`${guarded.url}/metrics`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
      expect((await scrape(guarded.url, { authorization: 'Bearer wrong' })).status).toBe(401);
      const ok = await scrape(guarded.url, { authorization: 'Bearer scrape-secret' });
      expect(ok.status).toBe(200);
      expect(sumOf(ok.samples, 'chunkscribe_jobs', { status: 'queued' })).toBe(0);
    } finally {
      await guarded.close();
      await removeDir(guarded.dataDir);
    }
  });
});
