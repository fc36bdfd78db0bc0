/**
 * What an engine's failure means, in words every engine can use. A provider turns its own failures (SDK classes,
 * HTTP statuses and body codes, process exits) into one of these, so the retry policy never needs to know whose
 * SDK threw; a failure the provider already has a service error code for may be thrown as an AppError instead.
 */
export const PROVIDER_ERROR_KINDS = [
  /** The call was stopped before an answer (an abort the SDK reports). */
  'cancelled',
  /** The credentials were refused. */
  'auth',
  /** The credentials are valid but may not do this. */
  'forbidden',
  /** The account has nothing left: waiting will not help. */
  'quota',
  /** Too many requests now: waiting will (see retryAfterMs). */
  'rate_limited',
  /** The model asked for does not exist on this engine. */
  'model_not_found',
  /** What was called does not exist (a wrong base URL). */
  'not_found',
  /** A setting of the whole request was refused (model, language, prompt): every chunk would get the same. */
  'bad_param',
  /** This chunk is larger than one request may carry. */
  'too_large',
  /** This chunk is too short to transcribe. */
  'too_short',
  /** This chunk's bytes could not be decoded. */
  'undecodable',
  /** This request was refused for another reason. */
  'rejected',
  /** The engine is in trouble right now (a 5xx, 408, 409): a later attempt may work. */
  'unavailable',
  /** No answer in time. */
  'timeout',
  /** The engine could not be reached, or the connection dropped. */
  'connection',
  /** The engine failed in a way it cannot name. */
  'unknown',
] as const;

export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number];

export interface ProviderErrorOptions {
  /** The HTTP status of the answer, for engines spoken to over HTTP. */
  status?: number;
  /** The engine's own code for the failure (e.g. `rate_limit_exceeded`): for logs and progress, never matched on. */
  code?: string;
  /** How long the engine asked to be left alone, in ms. */
  retryAfterMs?: number;
  /** The engine's own error. */
  cause?: unknown;
}

export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(kind: ProviderErrorKind, message: string, options: ProviderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProviderError';
    this.kind = kind;
    this.status = options.status;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * What a successful answer said about the account's rate limit: that a limit is used up and when it resets.
 * Sending before then would only earn a rate_limited failure, so every job holds.
 */
export interface RateLimitHint {
  /** ms until every exhausted limit has reset. */
  exhaustedForMs: number;
  /** In the engine's terms, for the log. */
  reason: string;
}
