import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChunkTranscriptionError } from '../../src/transcribe/chunk-outcome.ts';
import { createChunkTranscriber } from '../../src/transcribe/chunk-transcriber.ts';
import { createCircuitBreaker } from '../../src/transcribe/circuit-breaker.ts';
import { createOpenAIProvider } from '../../src/transcribe/providers/openai/provider.ts';
import { createRateLimiter } from '../../src/transcribe/rate-limiter.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI, type FaultSpec } from '../fake-openai/server.ts';
import { CLIPS, LIBRIVOX_DIR } from '../fixtures/speech.ts';

const CLIP = path.join(LIBRIVOX_DIR, `${CLIPS[1].id}.wav`);
const logger = pino({ level: 'silent' });

/**
 * Each row of the retry policy, driven by the fake OpenAI server over real HTTP through the real openai SDK, limiter
 * and circuit breaker. Waits are shrunk (base 1 ms) but Retry-After from the server is honoured as sent.
 */
describe('the retry policy over HTTP', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  beforeEach(() => fake.reset());
  afterAll(async () => fake.close());

  function transcriber() {
    const provider = createOpenAIProvider({ logger, apiKey: FAKE_OPENAI_KEY, baseURL: fake.url, timeoutMs: 1_000 });
    const limiter = createRateLimiter({ rpm: 60_000, burst: 100, maxInFlight: 4, logger });
    const breaker = createCircuitBreaker({ name: 'openai', logger });
    const pausedFor: number[] = [];
    const t = createChunkTranscriber({
      provider,
      limiter: {
        schedule: limiter.schedule,
        pauseFor: (ms, reason) => {
          pausedFor.push(ms);
          limiter.pauseFor(ms, reason);
        },
      },
      breaker,
      logger,
      maxAttempts: 4,
      baseDelayMs: 1,
      maxDelayMs: 5,
      chunkDeadlineMs: 20_000,
    });
    return {
      breaker,
      pausedFor,
      limiter,
      run: () =>
        t.transcribe({
          jobId: 'job_test',
          index: 0,
          path: CLIP,
          durationS: 2.99,
          language: 'en',
          prompt: null,
          model: 'whisper-1',
          signal: new AbortController().signal,
        }),
    };
  }

  const transcriptions = () => fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');

  const retried: Array<{ name: string; fault: FaultSpec }> = [
    { name: '429 rate_limit_exceeded with Retry-After', fault: { type: 'rate_limit', retryAfterS: 0.2 } },
    { name: '429 without Retry-After', fault: { type: 'rate_limit', retryAfterS: null } },
    { name: '500', fault: { type: 'server_error', status: 500 } },
    { name: '502 with an HTML body', fault: { type: 'server_error', status: 502 } },
    { name: '503', fault: { type: 'server_error', status: 503 } },
    { name: 'a dropped connection', fault: 'drop' },
    { name: 'a stalled request (client timeout)', fault: 'stall' },
  ];
  for (const { name, fault } of retried) {
    it(`retries after ${name} and then succeeds`, async () => {
      fake.script([fault, fault]);
      const { run, limiter } = transcriber();
      const result = await run();
      expect(result.text).toMatch(/^chunk-[0-9a-f]{8}-0/);
      const sent = transcriptions();
      expect(sent).toHaveLength(3);
      expect(sent.map((r) => r.attempt)).toEqual([0, 1, 2]);
      await limiter.stop();
    });
  }

  it('pauses the shared bucket for the Retry-After the server sent', async () => {
    fake.script([{ type: 'rate_limit', retryAfterS: 1 }]);
    const { run, pausedFor, limiter } = transcriber();
    await run();
    expect(pausedFor.length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...pausedFor)).toBeGreaterThanOrEqual(1_000);
    await limiter.stop();
  });

  const fatal: Array<{ name: string; fault: FaultSpec; code: string; circuit: 'open' | 'closed' }> = [
    { name: '429 insufficient_quota', fault: 'quota', code: 'PROVIDER_QUOTA', circuit: 'open' },
    { name: '401 invalid_api_key', fault: 'auth', code: 'PROVIDER_AUTH', circuit: 'open' },
    { name: '403', fault: 'forbidden', code: 'PROVIDER_AUTH', circuit: 'open' },
  ];
  for (const { name, fault, code, circuit } of fatal) {
    it(`fails the job with ${code} after ${name}, with one request and the circuit ${circuit}`, async () => {
      fake.script([fault, fault, fault]);
      const { run, breaker, limiter } = transcriber();
      const err = await run().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChunkTranscriptionError);
      expect((err as ChunkTranscriptionError).code).toBe(code);
      expect((err as ChunkTranscriptionError).fatalForJob).toBe(true);
      expect(transcriptions()).toHaveLength(1);
      expect(breaker.snapshot().state).toBe(circuit);
      await limiter.stop();
    });
  }

  const reshaped = [
    { fault: 'bad_audio', remedy: 're-encode' },
    { fault: 'too_short', remedy: 're-encode' },
    { fault: 'too_large', remedy: 'split' },
  ] as const;
  for (const { fault, remedy } of reshaped) {
    it(`fails only the chunk with PROVIDER_REJECTED after ${fault}, at once, naming the ${remedy} remedy`, async () => {
      fake.script([fault, fault, fault, fault]);
      const { run, limiter } = transcriber();
      const err = await run().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PROVIDER_REJECTED', fatalForJob: false, remedy });
      // The same bytes would get the same answer: other bytes are the remedies' job (test/app/provider-remedies).
      expect(transcriptions()).toHaveLength(1);
      await limiter.stop();
    });
  }

  it('gives up with CHUNK_FAILED after maxAttempts transient failures', async () => {
    fake.script(['drop', 'drop', 'drop', 'drop', 'drop']);
    const { run, limiter } = transcriber();
    const err = await run().catch((e: unknown) => e);
    expect((err as ChunkTranscriptionError).code).toBe('CHUNK_FAILED');
    expect((err as ChunkTranscriptionError).fatalForJob).toBe(false);
    expect(transcriptions()).toHaveLength(4);
    await limiter.stop();
  });
});
