import { isAppError, type ErrorCode } from '../errors.ts';

/**
 * What to do with one failed provider call. `providerFault` says whether the failure speaks about the provider's
 * health (5xx, connection) and so counts towards its circuit breaker; a 429 does not (the limiter handles it).
 * `maxAttempts` lowers the caller's attempt budget for failures we do not understand.
 */
export type Decision =
  | { action: 'retry'; class: string; retryAfterMs?: number; providerFault: boolean; maxAttempts?: number }
  | { action: 'fail-chunk'; code: ErrorCode; class: string }
  | { action: 'fail-job'; code: ErrorCode; class: string; openCircuit: boolean }
  | { action: 'reshape-chunk'; class: string; remedy: Remedy }
  | { action: 'cancelled'; class: string };

/** What may get a chunk the provider refused through: other bytes of the same audio, or smaller pieces of it. */
export type Remedy = 're-encode' | 'split';

export interface HeaderReader {
  get(name: string): string | null;
}

/** The parts of a thrown value the policy matches on, whatever threw it (openai SDK, node, local provider). */
export interface ErrorFacts {
  status: number | undefined;
  /** Provider error code from the response body (`rate_limit_exceeded`, `insufficient_quota`, ...). */
  code: string | undefined;
  type: string | undefined;
  param: string | undefined;
  /** Constructor names along the prototype chain, plus `err.name`. */
  names: string[];
  /** System / undici codes of the error and its `cause` chain (ECONNRESET, UND_ERR_SOCKET, ...). */
  nodeCodes: string[];
  app: { code: ErrorCode; retryable: boolean } | undefined;
  message: string;
  headers: HeaderReader | undefined;
}

interface Match {
  status?: number | readonly [number, number];
  code?: readonly string[];
  type?: readonly string[];
  param?: readonly string[];
  name?: readonly string[];
  nodeCode?: readonly string[];
  appCode?: readonly ErrorCode[];
  appRetryable?: boolean;
  /** Alone in a row it only applies to errors with no status, code or class that says more. */
  message?: RegExp;
}

type Then =
  | { action: 'retry'; providerFault: boolean; maxAttempts?: number }
  | { action: 'fail-chunk'; code: ErrorCode | 'from-error' }
  | { action: 'fail-job'; code: ErrorCode; openCircuit: boolean }
  | { action: 'reshape-chunk'; remedy: Remedy }
  | { action: 'cancelled' };

export interface PolicyRow {
  class: string;
  when: Match;
  then: Then;
}

const REQUEST_LEVEL_PARAMS = ['model', 'language', 'prompt', 'response_format', 'temperature', 'timestamp_granularities'];
const NETWORK_CODES = [
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
];
const fatal = (code: ErrorCode, openCircuit: boolean): Then => ({ action: 'fail-job', code, openCircuit });
const retry = (providerFault: boolean, maxAttempts?: number): Then => ({ action: 'retry', providerFault, maxAttempts });

/**
 * The retry policy, first matching row wins. Order matters: cancellation and our own AppErrors first, then HTTP
 * status (refined by body code/param), then SDK classes and node codes, and message text only as a last resort.
 *
 * Decisions worth knowing:
 * - 400 for the whole request (a bad model/language/prompt param) fails the job: every chunk would get the same.
 * - 400 "corrupt/unsupported/too short audio" and 413 are `reshape-chunk`: the same bytes will get the same answer,
 *   so the transcriber fails the chunk at once naming the remedy (re-encode, padded; or split) for the caller
 *   that can reshape it (chunk-remedies.ts).
 * - 404 fails the job without opening the circuit: it names this job's model (or a wrong base URL).
 * - 401/403 and exhausted quota fail the job and open the provider's circuit for every job.
 * - Unknown errors are retried, but with a budget of 3 attempts.
 */
export const RETRY_POLICY: readonly PolicyRow[] = [
  { class: 'cancelled', when: { name: ['AbortError', 'APIUserAbortError'] }, then: { action: 'cancelled' } },
  { class: 'cancelled', when: { appCode: ['CANCELLED'] }, then: { action: 'cancelled' } },
  { class: 'app-permanent', when: { appRetryable: false }, then: { action: 'fail-chunk', code: 'from-error' } },
  { class: 'app-transient', when: { appRetryable: true }, then: retry(true) },
  { class: 'quota-exhausted', when: { status: 429, code: ['insufficient_quota', 'billing_hard_limit_reached'] }, then: fatal('PROVIDER_QUOTA', true) },
  { class: 'quota-exhausted', when: { status: 429, type: ['insufficient_quota'] }, then: fatal('PROVIDER_QUOTA', true) },
  { class: 'rate-limited', when: { status: 429 }, then: retry(false) },
  { class: 'auth', when: { status: 401 }, then: fatal('PROVIDER_AUTH', true) },
  { class: 'forbidden', when: { status: 403 }, then: fatal('PROVIDER_AUTH', true) },
  { class: 'model-not-found', when: { status: 404, code: ['model_not_found'] }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'not-found', when: { status: 404 }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'too-large', when: { status: 413 }, then: { action: 'reshape-chunk', remedy: 'split' } },
  { class: 'bad-request-param', when: { status: 400, param: REQUEST_LEVEL_PARAMS }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'audio-too-short', when: { status: 400, message: /too short/i }, then: { action: 'reshape-chunk', remedy: 're-encode' } },
  {
    class: 'audio-invalid',
    when: { status: 400, message: /corrupt|unsupported|invalid file format|could not be decoded|decode audio/i },
    then: { action: 'reshape-chunk', remedy: 're-encode' },
  },
  { class: 'bad-request', when: { status: 400 }, then: { action: 'fail-chunk', code: 'PROVIDER_REJECTED' } },
  { class: 'request-timeout', when: { status: 408 }, then: retry(true) },
  { class: 'conflict', when: { status: 409 }, then: retry(true) },
  { class: 'unprocessable', when: { status: 422 }, then: { action: 'fail-chunk', code: 'PROVIDER_REJECTED' } },
  { class: 'server-error', when: { status: [500, 599] }, then: retry(true) },
  { class: 'client-error', when: { status: [400, 499] }, then: { action: 'fail-chunk', code: 'PROVIDER_REJECTED' } },
  { class: 'timeout', when: { name: ['APIConnectionTimeoutError', 'TimeoutError'] }, then: retry(true) },
  { class: 'connection', when: { name: ['APIConnectionError'] }, then: retry(true) },
  { class: 'network', when: { nodeCode: NETWORK_CODES }, then: retry(true) },
  { class: 'network', when: { message: /socket hang up|fetch failed|other side closed/i }, then: retry(true) },
];

const UNKNOWN: Decision = { action: 'retry', class: 'unknown', providerFault: true, maxAttempts: 3 };

const has = (list: readonly string[] | undefined, value: string | undefined) =>
  list === undefined || (value !== undefined && list.includes(value));

function matches(m: Match, f: ErrorFacts): boolean {
  if (m.status !== undefined) {
    if (f.status === undefined) return false;
    const [lo, hi] = typeof m.status === 'number' ? [m.status, m.status] : m.status;
    if (f.status < lo || f.status > hi) return false;
  }
  if (!has(m.code, f.code) || !has(m.type, f.type) || !has(m.param, f.param)) return false;
  if (m.name && !m.name.some((n) => f.names.includes(n))) return false;
  if (m.nodeCode && !m.nodeCode.some((c) => f.nodeCodes.includes(c))) return false;
  if (m.appCode && !(f.app && m.appCode.includes(f.app.code))) return false;
  if (m.appRetryable !== undefined && f.app?.retryable !== m.appRetryable) return false;
  if (m.message) {
    const refinesStatus = m.status !== undefined;
    const identified = f.status !== undefined || f.code !== undefined || f.nodeCodes.length > 0 || f.app !== undefined;
    if ((!refinesStatus && identified) || !m.message.test(f.message)) return false;
  }
  return true;
}

/** Classify anything a provider threw. `now` is only used to read an HTTP-date Retry-After. */
export function classifyError(err: unknown, now: number = Date.now()): Decision {
  const facts = describeError(err);
  const row = RETRY_POLICY.find((r) => matches(r.when, facts));
  if (!row) return UNKNOWN;
  const t = row.then;
  switch (t.action) {
    case 'retry': {
      const hint = facts.headers ? parseRetryHintMs(facts.headers, now) : undefined;
      return {
        action: 'retry',
        class: row.class,
        providerFault: t.providerFault,
        ...(hint !== undefined && { retryAfterMs: hint }),
        ...(t.maxAttempts !== undefined && { maxAttempts: t.maxAttempts }),
      };
    }
    case 'fail-chunk':
      return { action: 'fail-chunk', class: row.class, code: t.code === 'from-error' ? (facts.app?.code ?? 'CHUNK_FAILED') : t.code };
    case 'fail-job':
      return { action: 'fail-job', class: row.class, code: t.code, openCircuit: t.openCircuit };
    case 'reshape-chunk':
      return { action: 'reshape-chunk', class: row.class, remedy: t.remedy };
    case 'cancelled':
      return { action: 'cancelled', class: row.class };
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function describeError(err: unknown): ErrorFacts {
  const names = new Set<string>();
  const nodeCodes: string[] = [];
  const facts: ErrorFacts = {
    status: undefined, code: undefined, type: undefined, param: undefined, names: [], nodeCodes,
    app: undefined, message: err instanceof Error ? err.message : String(err), headers: undefined,
  };
  if (typeof err !== 'object' || err === null) return facts;
  for (let p: object | null = Object.getPrototypeOf(err); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const ctor = (p as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === 'string') names.add(ctor.name);
  }
  const e = err as Record<string, unknown>;
  if (typeof e.name === 'string') names.add(e.name);
  facts.names = [...names];
  if (isAppError(err)) {
    facts.app = { code: err.code, retryable: err.retryable };
  } else if (names.has('APIError')) {
    facts.status = typeof e.status === 'number' ? e.status : undefined;
    facts.code = str(e.code);
    facts.type = str(e.type);
    facts.param = str(e.param);
    const h = e.headers as HeaderReader | undefined;
    facts.headers = typeof h?.get === 'function' ? h : undefined;
  }
  // Node puts the system code on the error or, through fetch/undici, on a cause a few levels down.
  let cur: unknown = facts.app || facts.status !== undefined ? undefined : err;
  for (let depth = 0; depth < 5 && typeof cur === 'object' && cur !== null; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) nodeCodes.push(code);
    cur = (cur as { cause?: unknown }).cause;
  }
  return facts;
}

/** A short identifier of the failure for progress and logs: provider code, node code or HTTP status. */
export function errorIdentifier(err: unknown): string | undefined {
  const f = describeError(err);
  return f.code ?? f.app?.code ?? f.nodeCodes[0] ?? (f.status !== undefined ? `HTTP ${f.status}` : undefined);
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
  const reset = tokensOut && !requestsOut ? headers.get('x-ratelimit-reset-tokens') : headers.get('x-ratelimit-reset-requests');
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

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };

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
