import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { PROVIDER_ERROR_KINDS, ProviderError, type ProviderErrorKind } from '../../src/transcribe/provider-error.ts';
import { openAIError } from '../../src/transcribe/providers/openai/errors.ts';
import { RETRY_POLICY, classifyError, errorIdentifier } from '../../src/transcribe/retry-policy.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');

/** A real SDK error, as the openai provider throws it: through its mapping to a neutral ProviderError. */
function apiError(status: number, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): unknown {
  return openAIError(
    APIError.generate(status, { error: { message: 'provider says no', ...body } }, undefined, new Headers(headers)),
    NOW,
  );
}

function nodeError(code: string, message = `connect ${code} 127.0.0.1:443`): Error {
  return Object.assign(new Error(message), { code });
}

describe('retry policy', () => {
  describe('classifyError', () => {
    it('cancels on an AbortError (our own abort)', () => {
      const err = new DOMException('This operation was aborted', 'AbortError');
      expect(classifyError(err)).toEqual({ action: 'cancelled', class: 'cancelled' });
    });

    it('cancels on the SDK APIUserAbortError', () => {
      expect(classifyError(openAIError(new APIUserAbortError()))).toEqual({ action: 'cancelled', class: 'cancelled' });
    });

    it('cancels on AppError CANCELLED', () => {
      expect(classifyError(new AppError('CANCELLED', 'stopped', { retryable: true })).action).toBe('cancelled');
    });

    it('fails the chunk with the AppError code when it is not retryable', () => {
      expect(classifyError(new AppError('CHUNK_FAILED', 'pocketsphinx exited 1'))).toEqual({
        action: 'fail-chunk',
        code: 'CHUNK_FAILED',
        class: 'app-permanent',
      });
      expect(classifyError(new AppError('MEDIA_CORRUPT', 'bad wav'))).toMatchObject({ code: 'MEDIA_CORRUPT' });
    });

    it('retries a retryable AppError', () => {
      expect(classifyError(new AppError('PROVIDER_UNAVAILABLE', 'busy', { retryable: true }))).toMatchObject({
        action: 'retry',
        class: 'app-transient',
        providerFault: true,
      });
    });

    it('fails the job with PROVIDER_QUOTA and opens the circuit on 429 insufficient_quota', () => {
      const err = apiError(429, { code: 'insufficient_quota', type: 'insufficient_quota' }, { 'retry-after': '20' });
      expect(classifyError(err)).toEqual({
        action: 'fail-job',
        code: 'PROVIDER_QUOTA',
        class: 'quota-exhausted',
        openCircuit: true,
      });
    });

    it('recognises quota exhaustion from the error type alone', () => {
      expect(classifyError(apiError(429, { type: 'insufficient_quota' }))).toMatchObject({ code: 'PROVIDER_QUOTA' });
    });

    it('retries a 429 rate limit honouring retry-after-ms first', () => {
      const err = apiError(429, { code: 'rate_limit_exceeded' }, { 'retry-after-ms': '1500', 'retry-after': '9' });
      expect(classifyError(err)).toEqual({
        action: 'retry',
        class: 'rate-limited',
        providerFault: false,
        retryAfterMs: 1500,
      });
    });

    it('fails the job with PROVIDER_AUTH and opens the circuit on 401', () => {
      expect(classifyError(apiError(401, { code: 'invalid_api_key' }))).toEqual({
        action: 'fail-job',
        code: 'PROVIDER_AUTH',
        class: 'auth',
        openCircuit: true,
      });
    });

    it('fails the job with PROVIDER_AUTH and opens the circuit on 403', () => {
      expect(classifyError(apiError(403))).toMatchObject({
        action: 'fail-job',
        code: 'PROVIDER_AUTH',
        openCircuit: true,
      });
    });

    it('fails the job without opening the circuit on 404 model_not_found', () => {
      expect(classifyError(apiError(404, { code: 'model_not_found' }))).toEqual({
        action: 'fail-job',
        code: 'PROVIDER_REJECTED',
        class: 'model-not-found',
        openCircuit: false,
      });
    });

    it('fails the job on any other 404 (wrong base URL)', () => {
      expect(classifyError(apiError(404))).toMatchObject({
        action: 'fail-job',
        class: 'not-found',
        openCircuit: false,
      });
    });

    it('asks for a split on 413', () => {
      expect(classifyError(apiError(413))).toEqual({ action: 'reshape-chunk', class: 'too-large', remedy: 'split' });
    });

    it('fails the job on a 400 about a request-level param', () => {
      const err = apiError(400, { message: "Invalid language 'xx'.", param: 'language', code: 'invalid_value' });
      expect(classifyError(err)).toMatchObject({
        action: 'fail-job',
        code: 'PROVIDER_REJECTED',
        class: 'bad-request-param',
      });
    });

    it('asks for a (padded) re-encode on 400 audio too short', () => {
      const err = apiError(400, {
        message: 'Audio file is too short. Minimum audio length is 0.1 seconds.',
        param: 'file',
      });
      expect(classifyError(err)).toEqual({ action: 'reshape-chunk', class: 'audio-too-short', remedy: 're-encode' });
    });

    it('asks for a re-encode on 400 corrupt or unsupported audio', () => {
      const err = apiError(400, { message: 'Audio file might be corrupted or unsupported', param: 'file' });
      expect(classifyError(err)).toEqual({ action: 'reshape-chunk', class: 'audio-invalid', remedy: 're-encode' });
    });

    it('fails the chunk with PROVIDER_REJECTED on any other 400', () => {
      expect(classifyError(apiError(400, { message: 'something else' }))).toEqual({
        action: 'fail-chunk',
        code: 'PROVIDER_REJECTED',
        class: 'bad-request',
      });
    });

    it('retries 408', () => {
      expect(classifyError(apiError(408))).toMatchObject({
        action: 'retry',
        class: 'request-timeout',
        providerFault: true,
      });
    });

    it('retries 409', () => {
      expect(classifyError(apiError(409))).toMatchObject({ action: 'retry', class: 'conflict' });
    });

    it('fails the chunk on 422', () => {
      expect(classifyError(apiError(422))).toMatchObject({
        action: 'fail-chunk',
        code: 'PROVIDER_REJECTED',
        class: 'unprocessable',
      });
    });

    it('retries 5xx and keeps a Retry-After hint from a 503', () => {
      expect(classifyError(apiError(500))).toEqual({ action: 'retry', class: 'server-error', providerFault: true });
      expect(classifyError(apiError(503, {}, { 'retry-after': '2' }))).toMatchObject({
        class: 'server-error',
        retryAfterMs: 2000,
      });
    });

    it('fails the chunk on other 4xx statuses', () => {
      expect(classifyError(apiError(415))).toMatchObject({ action: 'fail-chunk', class: 'client-error' });
    });

    it('retries APIConnectionTimeoutError and a TimeoutError', () => {
      expect(classifyError(openAIError(new APIConnectionTimeoutError()))).toMatchObject({
        action: 'retry',
        class: 'timeout',
      });
      expect(classifyError(new DOMException('timed out', 'TimeoutError'))).toMatchObject({
        action: 'retry',
        class: 'timeout',
      });
    });

    it('retries APIConnectionError', () => {
      const err = new APIConnectionError({
        cause: Object.assign(new TypeError('fetch failed'), { cause: nodeError('ECONNREFUSED') }),
      });
      expect(classifyError(openAIError(err))).toMatchObject({
        action: 'retry',
        class: 'connection',
        providerFault: true,
      });
    });

    it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET'])(
      'retries node error code %s',
      (code) => {
        expect(classifyError(nodeError(code))).toMatchObject({ action: 'retry', class: 'network' });
      },
    );

    it('finds a node code down the cause chain', () => {
      const err = new TypeError('fetch failed', { cause: nodeError('ECONNRESET', 'read ECONNRESET') });
      expect(classifyError(err)).toMatchObject({ action: 'retry', class: 'network' });
    });

    it('retries "socket hang up" when nothing else identifies the error', () => {
      expect(classifyError(new Error('socket hang up'))).toMatchObject({ action: 'retry', class: 'network' });
    });

    it('does not match message text when the status says otherwise', () => {
      // The status (401) decides, not the "socket hang up" words in the body.
      expect(classifyError(apiError(401, { message: 'socket hang up' }))).toMatchObject({
        action: 'fail-job',
        code: 'PROVIDER_AUTH',
      });
      // A node code decides before the message-only row would.
      expect(classifyError(nodeError('ENOENT', 'socket hang up'))).toMatchObject({ class: 'unknown' });
    });

    it('retries unknown errors with a small attempt budget', () => {
      expect(classifyError(new Error('weird'))).toEqual({
        action: 'retry',
        class: 'unknown',
        providerFault: true,
        maxAttempts: 3,
      });
      expect(classifyError('a string')).toMatchObject({ class: 'unknown' });
    });

    it('has a test above for every class in the table', () => {
      const tested = [
        'cancelled',
        'app-permanent',
        'app-transient',
        'quota-exhausted',
        'rate-limited',
        'auth',
        'forbidden',
        'model-not-found',
        'not-found',
        'too-large',
        'bad-request-param',
        'audio-too-short',
        'audio-invalid',
        'bad-request',
        'request-timeout',
        'conflict',
        'unprocessable',
        'server-error',
        'client-error',
        'timeout',
        'connection',
        'network',
      ];
      expect(new Set(RETRY_POLICY.map((r) => r.class))).toEqual(new Set(tested));
    });
  });

  describe('on neutral errors (what any engine throws, no SDK involved)', () => {
    const neutral = (kind: ProviderErrorKind, status?: number) =>
      new ProviderError(kind, 'engine says no', status === undefined ? {} : { status });

    it.each<[ProviderErrorKind, number | undefined, string, string]>([
      ['cancelled', undefined, 'cancelled', 'cancelled'],
      ['quota', undefined, 'quota-exhausted', 'fail-job'],
      ['rate_limited', undefined, 'rate-limited', 'retry'],
      ['auth', undefined, 'auth', 'fail-job'],
      ['forbidden', undefined, 'forbidden', 'fail-job'],
      ['model_not_found', undefined, 'model-not-found', 'fail-job'],
      ['not_found', undefined, 'not-found', 'fail-job'],
      ['too_large', undefined, 'too-large', 'reshape-chunk'],
      ['bad_param', undefined, 'bad-request-param', 'fail-job'],
      ['too_short', undefined, 'audio-too-short', 'reshape-chunk'],
      ['undecodable', undefined, 'audio-invalid', 'reshape-chunk'],
      ['rejected', 400, 'bad-request', 'fail-chunk'],
      ['rejected', 422, 'unprocessable', 'fail-chunk'],
      ['rejected', undefined, 'client-error', 'fail-chunk'],
      ['unavailable', 408, 'request-timeout', 'retry'],
      ['unavailable', 409, 'conflict', 'retry'],
      ['unavailable', undefined, 'server-error', 'retry'],
      ['timeout', undefined, 'timeout', 'retry'],
      ['connection', undefined, 'connection', 'retry'],
      ['unknown', undefined, 'unknown', 'retry'],
    ])('%s (status %s) is %s: %s', (kind, status, cls, action) => {
      expect(classifyError(neutral(kind, status))).toMatchObject({ class: cls, action });
    });

    it('has a row above for every kind an engine may name', () => {
      const named = [
        'cancelled',
        'quota',
        'rate_limited',
        'auth',
        'forbidden',
        'model_not_found',
        'not_found',
        'too_large',
        'bad_param',
        'too_short',
        'undecodable',
        'rejected',
        'unavailable',
        'timeout',
        'connection',
        'unknown',
      ];
      expect(new Set(PROVIDER_ERROR_KINDS)).toEqual(new Set(named));
    });

    it('keeps the wait the engine asked for on a retry, and only there', () => {
      expect(classifyError(new ProviderError('rate_limited', 'slow down', { retryAfterMs: 1200 }))).toMatchObject({
        retryAfterMs: 1200,
      });
      expect(classifyError(new ProviderError('quota', 'no money', { retryAfterMs: 1200 }))).not.toHaveProperty(
        'retryAfterMs',
      );
    });

    it('does not read message text of an error an engine named', () => {
      expect(classifyError(new ProviderError('unknown', 'socket hang up'))).toMatchObject({ class: 'unknown' });
    });

    it("identifies a failure by the engine's code, the system code under a connection failure, or the status", () => {
      expect(errorIdentifier(apiError(429, { code: 'rate_limit_exceeded' }))).toBe('rate_limit_exceeded');
      expect(errorIdentifier(apiError(503))).toBe('HTTP 503');
      const dropped = new APIConnectionError({
        cause: Object.assign(new TypeError('fetch failed'), { cause: nodeError('ECONNREFUSED') }),
      });
      expect(errorIdentifier(openAIError(dropped))).toBe('ECONNREFUSED');
      expect(errorIdentifier(new AppError('CHUNK_FAILED', 'x'))).toBe('CHUNK_FAILED');
    });
  });
});
