import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';
import { parsePromText, sumOf, type PromSample } from '../support/prom-text.ts';
import { until } from '../support/until.ts';

async function scrape(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; samples: PromSample[] }> {
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
        if ((sumOf(scraped.samples, 'chunkscribe_jobs_ended_total') ?? 0) > 0) return true;
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

    expect(sumOf(samples, 'chunkscribe_chunk_transcription_seconds_count', { ...openai, outcome: 'success' })).toBe(
      chunks,
    );
    expect(sumOf(samples, 'chunkscribe_chunk_transcription_seconds_count', { outcome: 'failed' })).toBeUndefined();
    expect(
      sumOf(samples, 'chunkscribe_chunk_transcription_seconds_bucket', { ...openai, outcome: 'success', le: '+Inf' }),
    ).toBe(chunks);
    expect(
      sumOf(samples, 'chunkscribe_provider_requests_total', { ...openai, outcome: 'success', error_class: 'none' }),
    ).toBe(chunks);
    const errors = samples.filter(
      (s) => s.name === 'chunkscribe_provider_requests_total' && s.labels.outcome === 'error',
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]!.value).toBe(1);
    expect(
      sumOf(samples, 'chunkscribe_provider_retries_total', {
        provider: 'openai',
        error_class: errors[0]!.labels.error_class!,
      }),
    ).toBe(1);
    expect(sumOf(samples, 'chunkscribe_provider_retries_total')).toBe(1);

    expect(sumOf(samples, 'chunkscribe_jobs', { status: 'completed' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_jobs', { status: 'processing' })).toBe(0);
    expect(sumOf(samples, 'chunkscribe_jobs_accepted_total', openai)).toBe(1);
    const cost = sumOf(samples, 'chunkscribe_estimated_cost_usd_total', openai);
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeCloseTo((created.body.estimate as { cost_usd: number }).cost_usd, 9);
    expect(sumOf(samples, 'chunkscribe_upload_bytes_total')).toBe(statSync(speech.mp3).size);
    expect(sumOf(samples, 'chunkscribe_jobs_ended_total', { status: 'completed' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_audio_bytes_processed_total', { status: 'completed' })).toBe(
      statSync(speech.mp3).size,
    );
    expect(sumOf(samples, 'chunkscribe_audio_seconds_processed_total', { status: 'completed' })).toBeCloseTo(
      speech.durationS,
      0,
    );

    expect(sumOf(samples, 'chunkscribe_limiter_queued')).toBe(0);
    expect(sumOf(samples, 'chunkscribe_limiter_running')).toBe(0);
    const tokens = sumOf(samples, 'chunkscribe_limiter_tokens');
    expect(tokens).toBeGreaterThanOrEqual(0);
    expect(tokens).toBeLessThanOrEqual(50);
    expect([0, 1, 2]).toContain(sumOf(samples, 'chunkscribe_pressure_level'));
    expect([0, 1, 2]).toContain(sumOf(samples, 'chunkscribe_disk_pressure_level'));
    expect(sumOf(samples, 'chunkscribe_disk_free_bytes')).toBeGreaterThan(0);
    expect(sumOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // One job: one end-to-end time and one queue wait, both from its acceptance; it ended after it started.
    expect(sumOf(samples, 'chunkscribe_job_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_job_queue_wait_seconds_count')).toBe(1);
    expect(sumOf(samples, 'chunkscribe_job_duration_seconds_sum')).toBeGreaterThanOrEqual(
      sumOf(samples, 'chunkscribe_job_queue_wait_seconds_sum')!,
    );
    // Every provider call (each chunk, and the retried one once more) waited its turn at the limiter.
    expect(sumOf(samples, 'chunkscribe_limiter_wait_seconds_count')).toBe(chunks + 1);
    // One 503 is far below the failure threshold: the circuit stayed closed.
    expect(sumOf(samples, 'chunkscribe_circuit_state', { provider: 'openai' })).toBe(0);
    // Counted from zero, so that the first failure is an increase.
    expect(sumOf(samples, 'chunkscribe_jobs_ended_total', { status: 'failed' })).toBe(0);
    expect(sumOf(samples, 'chunkscribe_webhook_deliveries_total', { outcome: 'failed' })).toBe(0);
    const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
      version: string;
    };
    expect(samples.filter((s) => s.name === 'chunkscribe_build_info')).toEqual([
      { name: 'chunkscribe_build_info', labels: { version: pkg.version, node_version: process.version }, value: 1 },
    ]);
  });

  it('times requests by route pattern, never by URL, and counts unmatched ones as route="unmatched"', async () => {
    const missingJob = 'job_0000000000000000000000000x';
    const strayPath = `/no-such-route-${Date.now()}/x`;
    for (const target of [`/v1/jobs/${missingJob}`, `/v1/jobs/${missingJob}`, strayPath]) {
      const res = await fetch(`${server.url}${target}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    const series = (samples: PromSample[], labels: Record<string, string>) =>
      sumOf(samples, 'chunkscribe_http_request_duration_seconds_count', {
        method: 'GET',
        status_code: '404',
        ...labels,
      });
    // onResponse runs once the answer has gone out: the scrape may come first.
    let samples: PromSample[] = [];
    await until(
      async () => {
        samples = (await scrape(server.url)).samples;
        return series(samples, { route: '/v1/jobs/:id' }) === 2 && series(samples, { route: 'unmatched' }) === 1;
      },
      () =>
        `2 GET /v1/jobs/:id 404 and 1 unmatched 404 in /metrics, got ${series(samples, { route: '/v1/jobs/:id' })} and ${series(samples, { route: 'unmatched' })}`,
      { everyMs: 50 },
    );
    const http = samples.filter((s) => s.name.startsWith('chunkscribe_http_request_duration_seconds'));
    expect(http.filter((s) => s.labels.route === 'unmatched' && s.name.endsWith('_count'))).toEqual([
      {
        name: 'chunkscribe_http_request_duration_seconds_count',
        labels: { method: 'GET', route: 'unmatched', status_code: '404' },
        value: 1,
      },
    ]);
    expect(
      http.filter(
        (s) => JSON.stringify(s.labels).includes(missingJob) || JSON.stringify(s.labels).includes('no-such-route'),
      ),
    ).toEqual([]);
    // The first test's upload and polls, by their patterns.
    expect(
      sumOf(samples, 'chunkscribe_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/jobs',
        status_code: '202',
      }),
    ).toBe(1);
    expect(
      sumOf(samples, 'chunkscribe_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/v1/jobs/:id',
        status_code: '200',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const guarded = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      METRICS_TOKEN: 'scrape-secret',
    });
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
