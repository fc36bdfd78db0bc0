import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/transcribe/provider-error.ts';
import {
  exhaustedLimitResetMs,
  openAIError,
  openAIRateLimitHint,
  parseDuration,
  parseRetryHintMs,
} from '../../src/transcribe/providers/openai/errors.ts';

const NOW = Date.parse('2025-01-01T00:00:00Z');

function sdkError(status: number, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): APIError {
  return APIError.generate(
    status,
    { error: { message: 'provider says no', ...body } },
    undefined,
    new Headers(headers),
  );
}

/** The OpenAI provider's own knowledge: its SDK's errors and headers, as neutral facts for the retry policy. */
describe('openai errors', () => {
  describe('openAIError', () => {
    it.each<[number, Record<string, unknown>, string]>([
      [429, { code: 'insufficient_quota' }, 'quota'],
      [429, { code: 'billing_hard_limit_reached' }, 'quota'],
      [429, { type: 'insufficient_quota' }, 'quota'],
      [429, { code: 'rate_limit_exceeded' }, 'rate_limited'],
      [401, {}, 'auth'],
      [403, {}, 'forbidden'],
      [404, { code: 'model_not_found' }, 'model_not_found'],
      [404, {}, 'not_found'],
      [413, {}, 'too_large'],
      [400, { param: 'language', message: 'Audio file is too short' }, 'bad_param'],
      [400, { param: 'file', message: 'Audio file is too short. Minimum audio length is 0.1 seconds.' }, 'too_short'],
      [400, { message: 'Invalid file format.' }, 'undecodable'],
      [400, { message: 'something else' }, 'rejected'],
      [422, {}, 'rejected'],
      [415, {}, 'rejected'],
      [408, {}, 'unavailable'],
      [409, {}, 'unavailable'],
      [502, {}, 'unavailable'],
      [302, {}, 'unknown'],
    ])('maps %i %j to %s, keeping status, code, message and the SDK error', (status, body, kind) => {
      const original = sdkError(status, body);
      const mapped = openAIError(original, NOW);
      expect(mapped).toBeInstanceOf(ProviderError);
      expect(mapped).toMatchObject({ kind, status, message: original.message, cause: original });
      expect((mapped as ProviderError).code).toBe(typeof body.code === 'string' ? body.code : undefined);
    });

    it("maps the SDK's abort, timeout and connection classes", () => {
      expect(openAIError(new APIUserAbortError())).toMatchObject({ kind: 'cancelled' });
      expect(openAIError(new APIConnectionTimeoutError())).toMatchObject({ kind: 'timeout' });
      expect(openAIError(new APIConnectionError({ cause: new TypeError('fetch failed') }))).toMatchObject({
        kind: 'connection',
        status: undefined,
      });
    });

    it('reads the wait asked for from the headers (an HTTP date against now)', () => {
      expect(openAIError(sdkError(429, {}, { 'retry-after-ms': '1500', 'retry-after': '9' }), NOW)).toMatchObject({
        retryAfterMs: 1500,
      });
      expect(openAIError(sdkError(503, {}, { 'retry-after': new Date(NOW + 7000).toUTCString() }), NOW)).toMatchObject({
        retryAfterMs: 7000,
      });
      expect(openAIError(sdkError(500), NOW)).toMatchObject({ retryAfterMs: undefined });
    });

    it("leaves what is not the SDK's as it is", () => {
      const notFound = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      expect(openAIError(notFound)).toBe(notFound);
    });
  });

  describe('openAIRateLimitHint', () => {
    it('reports a used-up limit with its reset, and nothing while some is left', () => {
      const exhausted = new Headers({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' });
      expect(openAIRateLimitHint(exhausted)).toEqual({
        exhaustedForMs: 360_000,
        reason: 'x-ratelimit-remaining exhausted',
      });
      expect(openAIRateLimitHint(new Headers({ 'x-ratelimit-remaining-requests': '3' }))).toBeUndefined();
    });
  });

  describe('parseRetryHintMs', () => {
    const h = (o: Record<string, string>) => new Headers(o);

    it('reads Retry-After in seconds and as an HTTP date', () => {
      expect(parseRetryHintMs(h({ 'retry-after': '3' }), NOW)).toBe(3000);
      expect(parseRetryHintMs(h({ 'retry-after': new Date(NOW + 7000).toUTCString() }), NOW)).toBe(7000);
    });

    it('falls back to x-ratelimit-reset-requests, or -tokens when only tokens ran out', () => {
      expect(parseRetryHintMs(h({ 'x-ratelimit-reset-requests': '6m0s' }), NOW)).toBe(360_000);
      const tokensOut = {
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': '20ms',
        'x-ratelimit-reset-requests': '1s',
      };
      expect(parseRetryHintMs(h(tokensOut), NOW)).toBe(20);
    });

    it('returns undefined without a usable hint', () => {
      expect(parseRetryHintMs(h({}), NOW)).toBeUndefined();
      expect(parseRetryHintMs(h({ 'retry-after': 'soon' }), NOW)).toBeUndefined();
    });
  });

  describe('exhaustedLimitResetMs (hints on a successful answer)', () => {
    const h = (o: Record<string, string>) => new Headers(o);

    it('asks for a pause until the reset once no request is left', () => {
      expect(
        exhaustedLimitResetMs(h({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1.5s' })),
      ).toBe(1500);
    });

    it('takes the later reset when requests and tokens both ran out', () => {
      const both = {
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '2s',
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': '6m0s',
      };
      expect(exhaustedLimitResetMs(h(both))).toBe(360_000);
    });

    it('asks for nothing while some of the limit is left, or without a readable reset', () => {
      expect(
        exhaustedLimitResetMs(h({ 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '2s' })),
      ).toBeUndefined();
      expect(exhaustedLimitResetMs(h({ 'x-ratelimit-remaining-requests': '0' }))).toBeUndefined();
      expect(
        exhaustedLimitResetMs(h({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': 'soon' })),
      ).toBeUndefined();
      expect(exhaustedLimitResetMs(h({}))).toBeUndefined();
    });
  });

  describe('parseDuration', () => {
    it.each([
      ['1s', 1000],
      ['6m0s', 360_000],
      ['20ms', 20],
      ['1h2m3.5s', 3_723_500],
      ['0.5s', 500],
    ])('parses %s', (text, ms) => {
      expect(parseDuration(text)).toBe(ms);
    });

    it('rejects what is not a duration', () => {
      expect(parseDuration('')).toBeUndefined();
      expect(parseDuration('12')).toBeUndefined();
      expect(parseDuration('1x')).toBeUndefined();
    });
  });
});
