import { isAppError, type ErrorCode } from '../errors.ts';
import { ProviderError, type ProviderErrorKind } from './provider-error.ts';

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

/**
 * The parts of a thrown value the policy matches on, whatever threw it: a provider's ProviderError (its kind and
 * status), our own AppError (its code and whether it may be retried), or what the platform says of anything else
 * (an abort or timeout DOMException, node system codes, and the message as a last resort).
 */
export interface ErrorFacts {
  kind: ProviderErrorKind | undefined;
  status: number | undefined;
  retryAfterMs: number | undefined;
  /** The engine's own code: for logs and progress only, never matched on. */
  code: string | undefined;
  app: { code: ErrorCode; retryable: boolean } | undefined;
  /** `err.name` of an error that is neither a ProviderError nor an AppError (AbortError, TimeoutError). */
  name: string | undefined;
  /** System / undici codes of the error and its `cause` chain (ECONNRESET, UND_ERR_SOCKET, ...). */
  nodeCodes: string[];
  message: string;
}

interface Match {
  kind?: readonly ProviderErrorKind[];
  /** Refines a kind where the status is what tells the classes apart. */
  status?: number;
  name?: readonly string[];
  nodeCode?: readonly string[];
  appCode?: readonly ErrorCode[];
  appRetryable?: boolean;
  /** Only applies to errors nothing else identifies (no kind, node code or AppError). */
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

const NETWORK_CODES = [
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
];
const fatal = (code: ErrorCode, openCircuit: boolean): Then => ({ action: 'fail-job', code, openCircuit });
const retry = (providerFault: boolean, maxAttempts?: number): Then => ({ action: 'retry', providerFault, maxAttempts });
const rejected: Then = { action: 'fail-chunk', code: 'PROVIDER_REJECTED' };

/**
 * The retry policy, first matching row wins. It matches engine-neutral facts only: each provider maps its own
 * failures to a ProviderError kind (src/transcribe/providers/<engine>/). Cancellation and our own AppErrors
 * first, then the kinds, then what the platform says of errors no provider named, message text last.
 *
 * Decisions worth knowing:
 * - A refused request-level setting (model, language, prompt) fails the job: every chunk would get the same.
 * - Audio too short or undecodable, and a chunk too large, are `reshape-chunk`: the same bytes will get the same
 *   answer, so the transcriber fails the chunk at once naming the remedy (re-encode, padded; or split) for the
 *   caller that can reshape it (chunk-remedies.ts).
 * - Not found fails the job without opening the circuit: it names this job's model (or a wrong base URL).
 * - Refused credentials and exhausted quota fail the job and open the provider's circuit for every job.
 * - Unknown errors are retried, but with a budget of 3 attempts.
 */
export const RETRY_POLICY: readonly PolicyRow[] = [
  { class: 'cancelled', when: { kind: ['cancelled'] }, then: { action: 'cancelled' } },
  { class: 'cancelled', when: { name: ['AbortError'] }, then: { action: 'cancelled' } },
  { class: 'cancelled', when: { appCode: ['CANCELLED'] }, then: { action: 'cancelled' } },
  { class: 'app-permanent', when: { appRetryable: false }, then: { action: 'fail-chunk', code: 'from-error' } },
  { class: 'app-transient', when: { appRetryable: true }, then: retry(true) },
  { class: 'quota-exhausted', when: { kind: ['quota'] }, then: fatal('PROVIDER_QUOTA', true) },
  { class: 'rate-limited', when: { kind: ['rate_limited'] }, then: retry(false) },
  { class: 'auth', when: { kind: ['auth'] }, then: fatal('PROVIDER_AUTH', true) },
  { class: 'forbidden', when: { kind: ['forbidden'] }, then: fatal('PROVIDER_AUTH', true) },
  { class: 'model-not-found', when: { kind: ['model_not_found'] }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'not-found', when: { kind: ['not_found'] }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'too-large', when: { kind: ['too_large'] }, then: { action: 'reshape-chunk', remedy: 'split' } },
  { class: 'bad-request-param', when: { kind: ['bad_param'] }, then: fatal('PROVIDER_REJECTED', false) },
  { class: 'audio-too-short', when: { kind: ['too_short'] }, then: { action: 'reshape-chunk', remedy: 're-encode' } },
  { class: 'audio-invalid', when: { kind: ['undecodable'] }, then: { action: 'reshape-chunk', remedy: 're-encode' } },
  { class: 'bad-request', when: { kind: ['rejected'], status: 400 }, then: rejected },
  { class: 'unprocessable', when: { kind: ['rejected'], status: 422 }, then: rejected },
  { class: 'client-error', when: { kind: ['rejected'] }, then: rejected },
  { class: 'request-timeout', when: { kind: ['unavailable'], status: 408 }, then: retry(true) },
  { class: 'conflict', when: { kind: ['unavailable'], status: 409 }, then: retry(true) },
  { class: 'server-error', when: { kind: ['unavailable'] }, then: retry(true) },
  { class: 'timeout', when: { kind: ['timeout'] }, then: retry(true) },
  { class: 'timeout', when: { name: ['TimeoutError'] }, then: retry(true) },
  { class: 'connection', when: { kind: ['connection'] }, then: retry(true) },
  { class: 'network', when: { nodeCode: NETWORK_CODES }, then: retry(true) },
  { class: 'network', when: { message: /socket hang up|fetch failed|other side closed/i }, then: retry(true) },
];

const UNKNOWN: Decision = { action: 'retry', class: 'unknown', providerFault: true, maxAttempts: 3 };

const includes = <T>(list: readonly T[] | undefined, value: T | undefined) =>
  list === undefined || (value !== undefined && list.includes(value));

function matches(m: Match, f: ErrorFacts): boolean {
  if (!includes(m.kind, f.kind) || !includes(m.name, f.name) || !includes(m.appCode, f.app?.code)) return false;
  if (m.status !== undefined && f.status !== m.status) return false;
  if (m.nodeCode && !m.nodeCode.some((c) => f.nodeCodes.includes(c))) return false;
  if (m.appRetryable !== undefined && f.app?.retryable !== m.appRetryable) return false;
  if (m.message) {
    const identified = f.kind !== undefined || f.nodeCodes.length > 0 || f.app !== undefined;
    if (identified || !m.message.test(f.message)) return false;
  }
  return true;
}

/** Classify anything a provider threw. */
export function classifyError(err: unknown): Decision {
  const facts = describeError(err);
  const row = RETRY_POLICY.find((r) => matches(r.when, facts));
  if (!row) return UNKNOWN;
  const t = row.then;
  switch (t.action) {
    case 'retry':
      return {
        action: 'retry',
        class: row.class,
        providerFault: t.providerFault,
        ...(facts.retryAfterMs !== undefined && { retryAfterMs: facts.retryAfterMs }),
        ...(t.maxAttempts !== undefined && { maxAttempts: t.maxAttempts }),
      };
    case 'fail-chunk':
      return {
        action: 'fail-chunk',
        class: row.class,
        code: t.code === 'from-error' ? (facts.app?.code ?? 'CHUNK_FAILED') : t.code,
      };
    case 'fail-job':
      return { action: 'fail-job', class: row.class, code: t.code, openCircuit: t.openCircuit };
    case 'reshape-chunk':
      return { action: 'reshape-chunk', class: row.class, remedy: t.remedy };
    case 'cancelled':
      return { action: 'cancelled', class: row.class };
  }
}

/** Node puts the system code on the error or, through fetch/undici, on a cause a few levels down. */
function systemCodes(err: unknown): string[] {
  const codes: string[] = [];
  let cur = err;
  for (let depth = 0; depth < 5 && typeof cur === 'object' && cur !== null; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) codes.push(code);
    cur = (cur as { cause?: unknown }).cause;
  }
  return codes;
}

/** What an engine's error code looks like (`rate_limit_exceeded`, `invalid_api_key`): a short token. */
const PROVIDER_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

export function describeError(err: unknown): ErrorFacts {
  const facts: ErrorFacts = {
    kind: undefined,
    status: undefined,
    retryAfterMs: undefined,
    code: undefined,
    app: undefined,
    name: undefined,
    nodeCodes: [],
    message: err instanceof Error ? err.message : String(err),
  };
  if (err instanceof ProviderError) {
    facts.kind = err.kind;
    facts.status = err.status;
    facts.retryAfterMs = err.retryAfterMs;
    // The engine's code is its own text: kept only when it reads as a code (it reaches progress and messages).
    facts.code = err.code !== undefined && PROVIDER_CODE.test(err.code) ? err.code : undefined;
    // A connection failure names itself only by the system code its cause carries.
    if (err.status === undefined) facts.nodeCodes = systemCodes(err.cause);
  } else if (isAppError(err)) {
    facts.app = { code: err.code, retryable: err.retryable };
  } else if (typeof err === 'object' && err !== null) {
    const name = (err as { name?: unknown }).name;
    facts.name = typeof name === 'string' ? name : undefined;
    facts.nodeCodes = systemCodes(err);
  }
  return facts;
}

/** A short identifier of the failure for progress and logs: provider code, node code or HTTP status. */
export function errorIdentifier(err: unknown): string | undefined {
  const f = describeError(err);
  return f.code ?? f.app?.code ?? f.nodeCodes[0] ?? (f.status !== undefined ? `HTTP ${f.status}` : undefined);
}

/**
 * What a job's owner reads of a failed attempt: the engine's HTTP status and code, or the system code of a
 * connection failure, never the engine's message. Its message may name the operator's account (OpenAI's
 * rate-limit message names the organization, its 401 part of the key) or hosts; it goes to the log only. The
 * service's own errors (AppError) say what they say. '' when there is nothing to say beyond the class.
 */
export function failureSummary(err: unknown): string {
  const f = describeError(err);
  if (f.app !== undefined) return f.message;
  return [f.status !== undefined ? `HTTP ${f.status}` : undefined, f.code, f.nodeCodes[0]]
    .filter((part) => part !== undefined)
    .join(' ');
}
