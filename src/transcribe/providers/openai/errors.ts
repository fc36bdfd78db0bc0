import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ProviderError, type ProviderErrorKind, type RateLimitHint } from '../../provider-error.ts';
import { AnswerTooLargeError } from './file-fetch.ts';

export interface HeaderReader {
  get(name: string): string | null;
}

/** Parameters that name the whole request rather than this chunk's audio: a 400 about one is the same for every chunk. */
const REQUEST_LEVEL_PARAMS = [
  'model',
  'language',
  'prompt',
  'response_format',
  'temperature',
  'timestamp_granularities',
];
const QUOTA_CODES = ['insufficient_quota', 'billing_hard_limit_reached'];
const TOO_SHORT = /too short/i;
const UNDECODABLE = /corrupt|unsupported|invalid file format|could not be decoded|decode audio/i;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

interface BodyFacts {
  code: string | undefined;
  type: string | undefined;
  param: string | undefined;
  message: string;
}

/**
 * What an OpenAI-compatible answer's status says, refined by its body (code, type, param, message): first matching
 * row wins, as openai-node's APIError.generate reads the status.
 */
const STATUS_KINDS: ReadonlyArray<{
  status: number | readonly [number, number];
  when?: (e: BodyFacts) => boolean;
  kind: ProviderErrorKind;
}> = [
  {
    status: 429,
    when: (e) => (e.code !== undefined && QUOTA_CODES.includes(e.code)) || e.type === 'insufficient_quota',
    kind: 'quota',
  },
  { status: 429, kind: 'rate_limited' },
  { status: 401, kind: 'auth' },
  { status: 403, kind: 'forbidden' },
  { status: 404, when: (e) => e.code === 'model_not_found', kind: 'model_not_found' },
  { status: 404, kind: 'not_found' },
  { status: 413, kind: 'too_large' },
  { status: 400, when: (e) => e.param !== undefined && REQUEST_LEVEL_PARAMS.includes(e.param), kind: 'bad_param' },
  { status: 400, when: (e) => TOO_SHORT.test(e.message), kind: 'too_short' },
  { status: 400, when: (e) => UNDECODABLE.test(e.message), kind: 'undecodable' },
  { status: 408, kind: 'unavailable' },
  { status: 409, kind: 'unavailable' },
  { status: [500, 599], kind: 'unavailable' },
  { status: [400, 499], kind: 'rejected' },
];

function kindOf(status: number, body: BodyFacts): ProviderErrorKind {
  const row = STATUS_KINDS.find((r) => {
    const [lo, hi] = typeof r.status === 'number' ? [r.status, r.status] : r.status;
    return status >= lo && status <= hi && (r.when === undefined || r.when(body));
  });
  return row?.kind ?? 'unknown';
}

/**
 * The openai SDK's failure as a ProviderError, the SDK error kept as its cause; anything else (a chunk file that
 * cannot be read, say) is returned as it is. `now` only reads an HTTP-date Retry-After.
 */
export function openAIError(err: unknown, now: number = Date.now()): unknown {
  // A server in trouble in a way it does not name: a later attempt may be answered sanely (the policy bounds them).
  if (err instanceof AnswerTooLargeError)
    return new ProviderError('unknown', err.message, { cause: err, code: 'answer_too_large' });
  if (!(err instanceof APIError)) return err;
  const cause = { cause: err };
  if (err instanceof APIUserAbortError) return new ProviderError('cancelled', err.message, cause);
  // A timeout is a connection error to the SDK: ask for it first.
  if (err instanceof APIConnectionTimeoutError) return new ProviderError('timeout', err.message, cause);
  if (err instanceof APIConnectionError) return new ProviderError('connection', err.message, cause);
  // Without a status the SDK says nothing more than its cause does: let that speak.
  if (typeof err.status !== 'number') return err;
  const facts = { code: str(err.code), type: str(err.type), param: str(err.param), message: err.message };
  const headers = err.headers as HeaderReader | undefined;
  const retryAfterMs = typeof headers?.get === 'function' ? parseRetryHintMs(headers, now) : undefined;
  return new ProviderError(kindOf(err.status, facts), err.message, {
    ...cause,
    status: err.status,
    ...(facts.code !== undefined && { code: facts.code }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/**
 * The wait the provider asked for, in ms: `retry-after-ms`, then `Retry-After` (seconds or HTTP date), then the
 * OpenAI `x-ratelimit-reset-*` of the exhausted limit ("1s", "6m0s", "20ms").
 */
export function parseRetryHintMs(headers: HeaderReader, now: number = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const ra = headers.get('retry-after')?.trim();
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra)) return Math.ceil(Number(ra) * 1000);
    const at = Date.parse(ra);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  const tokensOut = headers.get('x-ratelimit-remaining-tokens') === '0';
  const requestsOut = headers.get('x-ratelimit-remaining-requests') === '0';
  const reset =
    tokensOut && !requestsOut ? headers.get('x-ratelimit-reset-tokens') : headers.get('x-ratelimit-reset-requests');
  return reset ? parseDuration(reset) : undefined;
}

/**
 * On a successful answer: how long until the account's exhausted request (or token) limit resets, in ms, or
 * undefined while some of it is left. Sending before then would only earn a 429.
 */
export function exhaustedLimitResetMs(headers: HeaderReader): number | undefined {
  const requestsOut = headers.get('x-ratelimit-remaining-requests')?.trim() === '0';
  const tokensOut = headers.get('x-ratelimit-remaining-tokens')?.trim() === '0';
  const waits = [
    requestsOut ? parseDuration(headers.get('x-ratelimit-reset-requests') ?? '') : undefined,
    tokensOut ? parseDuration(headers.get('x-ratelimit-reset-tokens') ?? '') : undefined,
  ].filter((ms): ms is number => ms !== undefined && ms > 0);
  return waits.length > 0 ? Math.max(...waits) : undefined;
}

/** The rate-limit hint of a successful answer's headers, or undefined while the account has some of its limit left. */
export function openAIRateLimitHint(headers: HeaderReader): RateLimitHint | undefined {
  const ms = exhaustedLimitResetMs(headers);
  return ms === undefined ? undefined : { exhaustedForMs: ms, reason: 'x-ratelimit-remaining exhausted' };
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** Go-style duration ("1h2m3.5s", "6m0s", "20ms") to whole ms; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+(\.\d+)?(h|ms|m|s|us|µs|ns))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, num, , unit] of s.matchAll(/(\d+(\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    total += Number(num) * (UNIT_MS[unit as string] ?? 0);
  }
  return Math.ceil(total);
}
