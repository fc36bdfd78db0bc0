import { APIError } from 'openai';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { ChunkTranscriptionError, type RetryInfo } from '../../src/transcribe/chunk-outcome.ts';
import { createChunkTranscriber } from '../../src/transcribe/chunk-transcriber.ts';
import { createCircuitBreaker } from '../../src/transcribe/circuit-breaker.ts';
import { MAX_PAUSE_MS } from '../../src/transcribe/rate-limiter.ts';
import { openAIError, openAIRateLimitHint } from '../../src/transcribe/providers/openai/errors.ts';
import type { ChunkResult, TranscribeInput, TranscriptionProvider } from '../../src/transcribe/types.ts';
import { manualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });
const RESULT: ChunkResult = {
  text: 'hello',
  language: 'en',
  segments: [{ start: 0, end: 1, text: 'hello' }],
  timing: 'segment',
};

/** A real SDK error as the openai provider throws it: mapped to a neutral ProviderError. */
const apiError = (status: number, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  openAIError(
    APIError.generate(status, { error: { message: 'provider says no', ...body } }, undefined, new Headers(headers)),
  ) as Error;
const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

type Step = Error | ChunkResult | 'hang' | { headers: Record<string, string>; result: ChunkResult };

/** Plays its script one call at a time; 'hang' never settles (and ignores the signal, like a stuck SDK). */
function scriptedProvider(script: Step[]): TranscriptionProvider & { calls: number } {
  const provider = {
    name: 'openai' as const,
    models: ['whisper-1'],
    calls: 0,
    transcribe(inp: TranscribeInput): Promise<ChunkResult> {
      const step = script[provider.calls++] ?? new Error('script exhausted');
      if (step === 'hang') return new Promise<ChunkResult>(() => {});
      if (!(step instanceof Error) && 'headers' in step) {
        const hint = openAIRateLimitHint(new Headers(step.headers));
        if (hint) inp.onRateLimit?.(hint);
        return Promise.resolve(step.result);
      }
      return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
    },
    check: () => Promise.resolve({ status: 'ok' as const, detail: 'fake' }),
  };
  return provider;
}

interface SetupOptions {
  maxAttempts?: number;
  failureThreshold?: number;
  deadlineMs?: number;
  realSleep?: boolean;
  /** Timers fire this many ms late (positive) or early (negative) against the clock. */
  skewMs?: number;
}

function setup(script: Step[], opts: SetupOptions = {}) {
  const clock = manualClock(0, { skewMs: opts.skewMs ?? 0 });
  const provider = scriptedProvider(script);
  const pauses: Array<{ ms: number; reason: string }> = [];
  const sleeps: number[] = [];
  const limiter = {
    schedule<T>(fn: () => Promise<T>, o?: { signal?: AbortSignal }): Promise<T> {
      return o?.signal?.aborted ? Promise.reject(o.signal.reason) : fn();
    },
    pauseFor: (ms: number, reason: string) => void pauses.push({ ms, reason }),
  };
  const breaker = createCircuitBreaker({
    name: 'openai',
    logger,
    failureThreshold: opts.failureThreshold ?? 100,
    coolDownMs: 5000,
    clock,
  });
  const transcriber = createChunkTranscriber({
    provider,
    limiter,
    breaker,
    logger,
    maxAttempts: opts.maxAttempts ?? 5,
    baseDelayMs: 100,
    maxDelayMs: 10_000,
    chunkDeadlineMs: opts.deadlineMs ?? 600_000,
    random: () => 0.5,
    clock,
    ...(!opts.realSleep && {
      sleep: (ms: number) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    }),
  });
  return { clock, provider, pauses, sleeps, breaker, transcriber };
}

function input(signal: AbortSignal = new AbortController().signal, index = 0): TranscribeInput {
  return {
    jobId: 'job1',
    index,
    path: '/tmp/c.mp3',
    durationS: 10,
    language: null,
    prompt: null,
    model: 'whisper-1',
    signal,
  };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('chunk transcriber', () => {
  it('retries transient failures with jittered backoff and then succeeds', async () => {
    const { provider, sleeps, transcriber } = setup([apiError(503), reset(), RESULT]);
    const attempts: number[] = [];
    const retries: RetryInfo[] = [];
    const result = await transcriber.transcribe(input(), {
      onAttempt: (n) => attempts.push(n),
      onRetry: (r) => retries.push(r),
    });
    expect(result).toEqual(RESULT);
    expect(provider.calls).toBe(3);
    expect(attempts).toEqual([1, 2, 3]);
    // random 0.5 * min(cap, 100 * 2^(attempt-1))
    expect(sleeps).toEqual([50, 100]);
    expect(retries).toEqual([
      { attempt: 1, delayMs: 50, errorClass: 'server-error', code: 'HTTP 503' },
      { attempt: 2, delayMs: 100, errorClass: 'network', code: 'ECONNRESET' },
    ]);
  });

  it('asks beforeRequest in the limiter slot before every request, and sends none once it aborted the chunk', async () => {
    const { provider, transcriber } = setup([apiError(503), RESULT]);
    const job = new AbortController();
    let asked = 0;
    const run = transcriber.transcribe({
      ...input(job.signal),
      // The runner found it no longer holds the job (frozen past its lock) just as the retry was let through.
      beforeRequest: () => {
        asked += 1;
        if (asked === 2) job.abort(new Error('this runner no longer holds the job'));
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(asked).toBe(2);
    expect(provider.calls).toBe(1);
  });

  it('honours Retry-After as the floor of the wait and pauses the shared limiter', async () => {
    const limited = apiError(429, { code: 'rate_limit_exceeded' }, { 'retry-after': '20' });
    const { sleeps, pauses, transcriber } = setup([limited, RESULT]);
    await transcriber.transcribe(input());
    expect(sleeps).toEqual([20_000]);
    expect(pauses).toEqual([{ ms: 20_000, reason: 'rate-limited (rate_limit_exceeded)' }]);
  });

  it('caps a Retry-After of 9999 h at MAX_PAUSE_MS instead of failing the chunk at once', async () => {
    const limited = apiError(429, { code: 'rate_limit_exceeded' }, { 'retry-after': String(9999 * 3600) });
    const { sleeps, pauses, transcriber } = setup([limited, RESULT], { deadlineMs: 2 * MAX_PAUSE_MS });
    await expect(transcriber.transcribe(input())).resolves.toEqual(RESULT);
    expect(sleeps).toEqual([MAX_PAUSE_MS]);
    expect(pauses).toEqual([{ ms: MAX_PAUSE_MS, reason: 'rate-limited (rate_limit_exceeded)' }]);
  });

  it('fails the job on an auth failure without a second call and opens the circuit for other chunks', async () => {
    const { provider, breaker, transcriber } = setup([apiError(401, { code: 'invalid_api_key' }), RESULT]);
    const err = await transcriber.transcribe(input()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkTranscriptionError);
    expect(err).toMatchObject({ code: 'PROVIDER_AUTH', fatalForJob: true, attempts: 1, errorClass: 'auth' });
    expect(provider.calls).toBe(1);
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH' });
    await expect(transcriber.transcribe(input(undefined, 1))).rejects.toMatchObject({
      code: 'PROVIDER_AUTH',
      fatalForJob: true,
    });
    expect(provider.calls).toBe(1);
  });

  it('fails the job with PROVIDER_QUOTA on insufficient_quota', async () => {
    const { provider, transcriber } = setup([
      apiError(429, { code: 'insufficient_quota', type: 'insufficient_quota' }),
      RESULT,
    ]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({ code: 'PROVIDER_QUOTA', fatalForJob: true });
    expect(provider.calls).toBe(1);
  });

  it('fails the chunk with CHUNK_FAILED after maxAttempts transient failures', async () => {
    const { provider, sleeps, transcriber } = setup([reset(), reset(), reset(), reset(), reset(), RESULT], {
      maxAttempts: 5,
    });
    const err = await transcriber.transcribe(input()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CHUNK_FAILED', fatalForJob: false, attempts: 5 });
    expect(provider.calls).toBe(5);
    expect(sleeps).toHaveLength(4);
  });

  it('rejects promptly with CANCELLED when aborted during a backoff wait', async () => {
    // Real abortable sleep on a clock that never advances: only the abort can end the wait.
    const { provider, transcriber } = setup([apiError(500), RESULT], { realSleep: true });
    const ac = new AbortController();
    const p = transcriber.transcribe(input(ac.signal));
    await settled();
    expect(provider.calls).toBe(1);
    ac.abort(new Error('user cancelled'));
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED', errorClass: 'cancelled' });
    expect(provider.calls).toBe(1);
  });

  it('rejects at once when aborted during a call the provider does not stop', async () => {
    const { transcriber } = setup(['hang']);
    const ac = new AbortController();
    const p = transcriber.transcribe(input(ac.signal));
    await settled();
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('ends with CANCELLED at once when the limiter is stopped for shutdown', async () => {
    const stopped = new AppError('CANCELLED', 'The rate limiter stopped before the request could start.', {
      retryable: true,
    });
    const { provider, sleeps, transcriber } = setup([stopped, RESULT]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({ code: 'CANCELLED', fatalForJob: false });
    expect(provider.calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('fails the chunk without retrying on a plain 400', async () => {
    const { provider, transcriber } = setup([apiError(400), RESULT]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({
      code: 'PROVIDER_REJECTED',
      fatalForJob: false,
    });
    expect(provider.calls).toBe(1);
  });

  it('fails a too-large chunk at once, naming the split remedy', async () => {
    const { provider, transcriber } = setup([apiError(413), RESULT]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({
      code: 'PROVIDER_REJECTED',
      remedy: 'split',
      fatalForJob: false,
    });
    expect(provider.calls).toBe(1);
  });

  it('fails an undecodable chunk at once, naming the re-encode remedy', async () => {
    const { provider, transcriber } = setup([
      apiError(400, { message: 'Audio file might be corrupted or unsupported', param: 'file' }),
      RESULT,
    ]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({
      code: 'PROVIDER_REJECTED',
      remedy: 're-encode',
    });
    expect(provider.calls).toBe(1);
  });

  it('pauses the shared limiter until the reset when a successful answer says the request limit is used up', async () => {
    const exhausted = { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' };
    const { pauses, transcriber } = setup([
      { headers: exhausted, result: RESULT },
      { headers: { 'x-ratelimit-remaining-requests': '3' }, result: RESULT },
    ]);
    expect(await transcriber.transcribe(input())).toEqual(RESULT);
    expect(pauses).toEqual([{ ms: 360_000, reason: expect.stringContaining('x-ratelimit') }]);
    await transcriber.transcribe(input());
    expect(pauses).toHaveLength(1);
  });

  it('fails a non-retryable AppError from the local provider with its code', async () => {
    const { provider, transcriber } = setup([new AppError('CHUNK_FAILED', 'pocketsphinx exited with 1'), RESULT]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({
      code: 'CHUNK_FAILED',
      errorClass: 'app-permanent',
    });
    expect(provider.calls).toBe(1);
  });

  it('gives unknown errors a budget of three attempts', async () => {
    const { provider, transcriber } = setup([new Error('odd'), new Error('odd'), new Error('odd'), RESULT]);
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({
      code: 'CHUNK_FAILED',
      errorClass: 'unknown',
    });
    expect(provider.calls).toBe(3);
  });

  it('fails instead of waiting when the next attempt would pass the deadline', async () => {
    const limited = apiError(429, {}, { 'retry-after': '120' });
    const { sleeps, transcriber } = setup([limited, RESULT], { deadlineMs: 60_000 });
    await expect(transcriber.transcribe(input())).rejects.toMatchObject({ code: 'CHUNK_FAILED', fatalForJob: false });
    expect(sleeps).toEqual([]);
  });

  it('fails with CHUNK_FAILED when the deadline passes during a stuck call', async () => {
    const { clock, transcriber } = setup(['hang'], { deadlineMs: 30_000 });
    const p = transcriber.transcribe(input());
    await settled();
    clock.advance(30_000);
    await expect(p).rejects.toMatchObject({ code: 'CHUNK_FAILED' });
  });

  it('waits at an open circuit after repeated faults and goes on once the probe is allowed', async () => {
    const { clock, provider, breaker, transcriber } = setup([apiError(502), apiError(502), RESULT], {
      failureThreshold: 2,
    });
    const events: string[] = [];
    const p = transcriber.transcribe(input(), {
      onAttempt: (n) => events.push(`attempt ${n}`),
      onRetry: (r) => events.push(`retry ${r.attempt}`),
      onWaiting: (w) => events.push(`waiting ${w.reason} until ${w.until}`),
    });
    await settled();
    expect(provider.calls).toBe(2);
    expect(breaker.snapshot()).toMatchObject({ state: 'open', waiting: 1 });
    // Opened at t=0 by the second fault (the manual clock has not moved), probe allowed after the 5 s cool-down.
    expect(events).toEqual([
      'attempt 1',
      'retry 1',
      'attempt 2',
      'retry 2',
      `waiting provider_circuit_open until ${clock.now() + 5000}`,
    ]);
    clock.advance(5000);
    await expect(p).resolves.toEqual(RESULT);
    expect(events.at(-1)).toBe('attempt 3');
    expect(breaker.snapshot().state).toBe('closed');
  });

  describe('with timers that fire early against the clock', () => {
    it('goes on at the open circuit once the cool-down is over, not only when something else touches the breaker', async () => {
      const { clock, provider, breaker, transcriber } = setup([apiError(502), apiError(502), RESULT], {
        failureThreshold: 2,
        skewMs: -1,
      });
      const p = transcriber.transcribe(input());
      await settled();
      expect(breaker.snapshot()).toMatchObject({ state: 'open', waiting: 1 });
      clock.advance(4_999);
      await settled();
      expect(provider.calls).toBe(2);
      clock.advance(1);
      await settled();
      expect(provider.calls).toBe(3);
      await expect(p).resolves.toEqual(RESULT);
    });

    it('waits the whole backoff before the next attempt', async () => {
      // random 0.5 x base 100: the first retry waits 50 ms.
      const { clock, provider, transcriber } = setup([reset(), RESULT], { realSleep: true, skewMs: -1 });
      const p = transcriber.transcribe(input());
      await settled();
      clock.advance(49);
      await settled();
      expect(provider.calls).toBe(1);
      clock.advance(1);
      await expect(p).resolves.toEqual(RESULT);
      expect(provider.calls).toBe(2);
    });

    it('does not fail the chunk before its deadline', async () => {
      const { clock, transcriber } = setup(['hang'], { deadlineMs: 30_000, skewMs: -1 });
      let outcome = 'pending';
      const p = transcriber.transcribe(input()).catch((err: unknown) => {
        outcome = 'rejected';
        throw err;
      });
      await settled();
      clock.advance(29_999);
      await settled();
      expect(outcome).toBe('pending');
      clock.advance(1);
      await expect(p).rejects.toMatchObject({ code: 'CHUNK_FAILED' });
    });
  });
});
