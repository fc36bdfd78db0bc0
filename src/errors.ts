/**
 * Every error a client or the pipeline can see carries one of these stable codes. The HTTP layer maps
 * an AppError to the contract's error shape; anything else becomes INTERNAL with a generic message.
 */
export const ERROR_STATUS = {
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  FILE_MISSING: 400,
  INVALID_FIELD: 400,
  FILE_TOO_LARGE: 413,
  UPLOAD_TOO_SLOW: 408,
  UNSUPPORTED_MEDIA: 415,
  MEDIA_CORRUPT: 422,
  DURATION_OUT_OF_RANGE: 422,
  BUDGET_EXCEEDED: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  JOB_NOT_COMPLETED: 409,
  RATE_LIMITED: 429,
  SERVER_BUSY: 503,
  INSUFFICIENT_STORAGE: 507,
  PROVIDER_AUTH: 502,
  PROVIDER_QUOTA: 502,
  PROVIDER_REJECTED: 502,
  PROVIDER_UNAVAILABLE: 503,
  CHUNK_FAILED: 502,
  CANCELLED: 409,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AppErrorOptions {
  details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  retryAfterS?: number;
  /** False when repeating the same operation cannot succeed (the retry policy fails fast on it). */
  retryable?: boolean;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterS: number | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.details = options.details;
    this.retryAfterS = options.retryAfterS;
    this.retryable = options.retryable ?? false;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, value);
}

/** The message of anything thrown, for logs (never for 5xx responses). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Pure: a tool's error text (ffmpeg's, pocketsphinx's) as a job's tenant may read it in an answer: every absolute
 * path cut to its file name, since such lines name the upload or chunk in DATA_DIR or the tool's install
 * ("Failed to open file '/data/jobs/job_x/chunk-0001.wav'"). Logs keep the whole text.
 */
export function withoutDirectories(text: string): string {
  // A path starts a word (after a space, a quote, a bracket or '='): '1/2' and 'a/b' are not paths.
  return text.replace(/(?<=^|[\s'"`(=])(?:\/[^\s/'"`]+)*\/([^\s/'"`]*)/g, '$1');
}
