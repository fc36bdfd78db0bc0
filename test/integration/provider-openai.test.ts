import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  InternalServerError,
  RateLimitError,
} from 'openai';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ProviderError } from '../../src/transcribe/provider-error.ts';
import { createProvider } from '../../src/transcribe/providers/index.ts';
import { openAIModel } from '../../src/transcribe/providers/openai/models.ts';
import {
  AnswerTooLargeError,
  MAX_ANSWER_BYTES,
  PIECE_BYTES,
} from '../../src/transcribe/providers/openai/file-fetch.ts';
import { createOpenAIProvider, normalizeLanguage } from '../../src/transcribe/providers/openai/provider.ts';
import type { TranscribeInput } from '../../src/transcribe/types.ts';
import { ffmpeg, speechFixture } from '../fixtures/speech.ts';
import { FAKE_OPENAI_KEY, fakeTranscript, startFakeOpenAI } from '../fake-openai/server.ts';
import type { FakeOpenAI } from '../fake-openai/server.ts';

const logger = pino({ level: 'silent' });

/** The provider's failure, which must be the neutral ProviderError: nothing past the provider sees SDK classes. */
async function failure(work: Promise<unknown>): Promise<ProviderError> {
  const err: unknown = await work.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

describe('createOpenAIProvider', () => {
  let fake: FakeOpenAI;
  const fx = speechFixture();
  const bytes = readFileSync(fx.wav);
  const input = (over: Partial<TranscribeInput> = {}): TranscribeInput => ({
    jobId: 'job_test',
    index: 3,
    path: fx.wav,
    durationS: fx.durationS,
    language: 'en',
    prompt: 'Austen',
    model: 'whisper-1',
    signal: new AbortController().signal,
    ...over,
  });
  const provider = (timeoutMs?: number) =>
    createOpenAIProvider({ logger, apiKey: FAKE_OPENAI_KEY, baseURL: fake.url, timeoutMs });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
  });

  it('maps whisper-1 verbose_json segments and names the language in ISO-639-1', async () => {
    const result = await provider().transcribe(input());
    const expected = fakeTranscript(bytes, fx.durationS);
    expect(result.timing).toBe('segment');
    expect(result.language).toBe('en');
    expect(result.text).toBe(expected.text);
    expect(result.segments).toEqual(expected.segments);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      model: 'whisper-1',
      responseFormat: 'verbose_json',
      language: 'en',
      prompt: 'Austen',
      bytes: bytes.length,
      filename: 'speech.wav',
    });
  });

  it('sends chunk files through one reused buffer, piece by piece and request after request, and the server gets their exact bytes', async () => {
    // What the upload writes: a fresh buffer per piece (the platform fetch reading a Blob) was dead garbage that
    // three chunks in flight held by the tens of MiB until a GC.
    const backing = new Set<ArrayBufferLike>();
    let pieces = 0;
    const origWrite = http.ClientRequest.prototype.write;
    const write = vi.spyOn(http.ClientRequest.prototype, 'write').mockImplementation(function (
      this: http.ClientRequest,
      ...args: Parameters<http.ClientRequest['write']>
    ) {
      const chunk = args[0];
      if (chunk instanceof Uint8Array && chunk.byteLength > 1024) {
        pieces += 1;
        backing.add(chunk.buffer);
      }
      return Reflect.apply(origWrite, this, args) as boolean;
    });
    // A file of several pieces: the fixture's speech, 3.5 pieces long.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-pieces-'));
    const long = path.join(dir, 'long.wav');
    const durationS = (3.5 * PIECE_BYTES) / 32_000;
    ffmpeg(['-stream_loop', '-1', '-i', fx.wav, '-t', String(durationS), '-ar', '16000', '-ac', '1', long]);
    const longBytes = readFileSync(long);
    try {
      // Two chunks one after the other through one client: the second goes through the first one's buffer.
      const client = provider();
      for (let i = 0; i < 2; i++) {
        const result = await client.transcribe(input({ path: long, durationS }));
        expect(result.text).toBe(fakeTranscript(longBytes, durationS).text);
      }
    } finally {
      write.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(fake.requests[0]).toMatchObject({ bytes: longBytes.length, filename: 'long.wav' });
    expect(pieces).toBe(2 * Math.ceil(longBytes.length / PIECE_BYTES));
    expect(pieces).toBeGreaterThanOrEqual(4);
    expect(backing.size).toBe(1);
  });

  it("sends a chunk with no request of the SDK's own first (its FormData check uses the fetch's Response)", async () => {
    const platform = vi.spyOn(globalThis, 'fetch');
    try {
      const result = await provider().transcribe(input());
      expect(result.text).toBe(fakeTranscript(bytes, fx.durationS).text);
      expect(platform).not.toHaveBeenCalled();
    } finally {
      platform.mockRestore();
    }
  });

  it('asks whisper-1 for word times too and keeps them, chunk-relative, trimmed, inside the chunk', async () => {
    const result = await provider().transcribe(input());
    expect(fake.requests[0]?.granularities).toEqual(['word', 'segment']);
    const expected = fakeTranscript(bytes, fx.durationS).segments.map((seg) => ({
      start: seg.start,
      end: seg.end,
      word: seg.text,
    }));
    expect(result.words).toEqual(expected);
  });

  it("follows a declared model's timing: segments without words, or plain json", async () => {
    const models = [
      { ...openAIModel('own-segments'), segmentTimes: true, known: true },
      { ...openAIModel('own-plain'), known: true },
    ];
    const server = await startFakeOpenAI({ apiKey: null, models: models.map((m) => m.id) });
    try {
      // A self-hosted server: any key will do.
      const own = createOpenAIProvider({ logger, apiKey: 'unused', baseURL: server.url, models });
      expect(own.models).toEqual(['own-segments', 'own-plain']);
      const segmented = await own.transcribe(input({ model: 'own-segments' }));
      expect(segmented.timing).toBe('segment');
      expect(segmented.words).toBeUndefined();
      const plain = await own.transcribe(input({ model: 'own-plain' }));
      expect(plain.timing).toBe('chunk');
      expect(server.requests.map((r) => [r.model, r.responseFormat, r.granularities.length])).toEqual([
        ['own-segments', 'verbose_json', 0],
        ['own-plain', 'json', 0],
      ]);
    } finally {
      await server.close();
    }
  });

  it('returns one chunk-level segment for gpt-4o-transcribe (json, no segment times)', async () => {
    const result = await provider().transcribe(input({ model: 'gpt-4o-transcribe', language: null, prompt: null }));
    const expected = fakeTranscript(bytes, fx.durationS);
    expect(result).toEqual({
      text: expected.text,
      language: null,
      timing: 'chunk',
      segments: [{ start: 0, end: fx.durationS, text: expected.text }],
    });
    expect(fake.requests[0]).toMatchObject({
      model: 'gpt-4o-transcribe',
      responseFormat: 'json',
      language: null,
      prompt: null,
    });
  });

  it("surfaces a 401 as an auth ProviderError over the SDK's AuthenticationError when the key is wrong", async () => {
    fake.setKey('sk-some-other-key');
    const err = await failure(provider().transcribe(input()));
    expect(err).toMatchObject({ kind: 'auth', status: 401, code: 'invalid_api_key' });
    expect(err.cause).toBeInstanceOf(AuthenticationError);
    expect((err.cause as AuthenticationError).status).toBe(401);
    expect((err.cause as AuthenticationError).code).toBe('invalid_api_key');
  });

  it('surfaces a 429 as rate_limited over RateLimitError with Retry-After read, after exactly one request', async () => {
    fake.script([{ type: 'rate_limit', retryAfterS: 7 }]);
    const err = await failure(provider().transcribe(input()));
    expect(err).toMatchObject({ kind: 'rate_limited', status: 429, code: 'rate_limit_exceeded', retryAfterMs: 7000 });
    expect(err.cause).toBeInstanceOf(RateLimitError);
    const rl = err.cause as RateLimitError;
    expect(rl.status).toBe(429);
    expect(rl.code).toBe('rate_limit_exceeded');
    expect(rl.headers.get('retry-after')).toBe('7');
    expect(rl.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // SDK retries are off: the retry policy, not the SDK, decides whether to send it again.
    expect(fake.requests).toHaveLength(1);
  });

  it('surfaces insufficient_quota and 5xx without SDK retries', async () => {
    fake.script(['quota', { type: 'server_error', status: 503 }]);
    const quota = await failure(provider().transcribe(input()));
    expect(quota).toMatchObject({ kind: 'quota', code: 'insufficient_quota' });
    expect(quota.cause).toBeInstanceOf(RateLimitError);
    expect((quota.cause as RateLimitError).code).toBe('insufficient_quota');
    const unavailable = await failure(provider().transcribe(input()));
    expect(unavailable).toMatchObject({ kind: 'unavailable', status: 503 });
    expect(unavailable.cause).toBeInstanceOf(InternalServerError);
    expect((unavailable.cause as InternalServerError).status).toBe(503);
    expect(fake.requests).toHaveLength(2);
  });

  it('surfaces a dropped connection as connection over APIConnectionError', async () => {
    fake.script(['drop']);
    const err = await failure(provider().transcribe(input()));
    expect(err).toMatchObject({ kind: 'connection' });
    expect(err.cause).toBeInstanceOf(APIConnectionError);
    expect(fake.requests[0]?.outcome).toBe('dropped');
  });

  it('times out a stalled request as timeout over APIConnectionTimeoutError', async () => {
    fake.script(['stall']);
    const err = await failure(provider(300).transcribe(input()));
    expect(err).toMatchObject({ kind: 'timeout' });
    expect(err.cause).toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('cuts off an answer that does not end at MAX_ANSWER_BYTES: unknown, answer_too_large, and the next request is answered', async () => {
    fake.script([{ type: 'flood' }]);
    const err = await failure(provider().transcribe(input()));
    expect(err).toMatchObject({ kind: 'unknown', code: 'answer_too_large' });
    expect(err.cause).toBeInstanceOf(AnswerTooLargeError);
    // The connection was closed from this side: the fake sees its client gone, not an answer it finished.
    await expect.poll(() => fake.requests[0]?.outcome).toBe('client_closed');
    await expect(provider().transcribe(input())).resolves.toMatchObject({
      text: fakeTranscript(bytes, fx.durationS).text,
    });
  });

  it('refuses a whole answer larger than MAX_ANSWER_BYTES instead of reading it into one string', async () => {
    fake.script([{ type: 'flood', bytes: MAX_ANSWER_BYTES + PIECE_BYTES }]);
    const err = await failure(provider().transcribe(input()));
    expect(err).toMatchObject({ kind: 'unknown', code: 'answer_too_large' });
  });

  it('stops the request as cancelled over APIUserAbortError when the signal aborts', async () => {
    fake.script(['stall']);
    const ac = new AbortController();
    const pending = failure(provider().transcribe(input({ signal: ac.signal })));
    await expect.poll(() => fake.requests[0]?.outcome).toBe('stalled');
    ac.abort();
    const err = await pending;
    expect(err).toMatchObject({ kind: 'cancelled' });
    expect(err.cause).toBeInstanceOf(APIUserAbortError);
  });

  it('checks ok when the models endpoint answers', async () => {
    expect(await provider().check()).toMatchObject({ status: 'ok' });
    expect(fake.requests[0]?.path).toBe('/v1/models');
  });

  it('checks down with PROVIDER_AUTH on a 401 or 403', async () => {
    fake.setKey('sk-some-other-key');
    expect(await provider().check()).toMatchObject({ status: 'down', code: 'PROVIDER_AUTH' });
    fake.reset();
    fake.script(['forbidden'], 'models');
    expect(await provider().check()).toMatchObject({ status: 'down', code: 'PROVIDER_AUTH' });
  });

  it('checks down with PROVIDER_QUOTA when the account is out of quota, degraded on a 5xx', async () => {
    fake.script(['quota', { type: 'server_error', status: 500 }], 'models');
    expect(await provider().check()).toMatchObject({ status: 'down', code: 'PROVIDER_QUOTA' });
    const degraded = await provider().check();
    expect(degraded.status).toBe('degraded');
    expect(degraded.code).toBeUndefined();
  });

  it('checks down with PROVIDER_UNAVAILABLE when nothing listens on the port', async () => {
    const p = createOpenAIProvider({ logger, apiKey: FAKE_OPENAI_KEY, baseURL: await closedPortUrl() });
    expect(await p.check()).toMatchObject({ status: 'down', code: 'PROVIDER_UNAVAILABLE' });
  });

  it('is what createProvider builds from an openai config', async () => {
    const config = loadConfig({
      TRANSCRIBE_PROVIDER: 'openai',
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
    });
    const p = createProvider(config, logger);
    expect(p.name).toBe('openai');
    expect(p.models).toEqual(['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe']);
    expect((await p.transcribe(input())).timing).toBe('segment');
  });
});

describe('createProvider', () => {
  it('builds the local provider when the config says local', () => {
    const p = createProvider(loadConfig({ TRANSCRIBE_PROVIDER: 'local' }), logger);
    expect(p.name).toBe('local');
  });
});

describe('normalizeLanguage', () => {
  it("maps whisper's language names and ISO codes to ISO-639-1, and unknowns to null", () => {
    expect(normalizeLanguage('english')).toBe('en');
    expect(normalizeLanguage('German')).toBe('de');
    expect(normalizeLanguage('fr')).toBe('fr');
    expect(normalizeLanguage('klingon')).toBeNull();
    expect(normalizeLanguage(undefined)).toBeNull();
  });
});
