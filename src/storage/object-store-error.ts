/**
 * What went wrong talking to the object store, in the service's terms. The SDK's own errors are never passed on:
 * some carry the request's signing details (a SignatureDoesNotMatch answer holds the access key id and the string
 * that was signed), so only the facts below leave this module, and they are what logs and health show.
 */
export type ObjectStoreFailure =
  /** The bucket does not exist: a configuration error, not a passing fault. */
  | 'bucket_missing'
  /** Credentials missing, wrong, or without the permission: a configuration error too. */
  | 'auth'
  /** The object is not there. */
  | 'not_found'
  /** The caller gave up (its signal fired). */
  | 'cancelled'
  /** Connection refused or reset, a timeout, a 5xx, throttling: worth trying again later. */
  | 'unavailable';

export class ObjectStoreError extends Error {
  readonly kind: ObjectStoreFailure;
  /** The store's error code or the socket's (e.g. NoSuchBucket, ECONNREFUSED), when there was one. */
  readonly storeCode: string | undefined;
  readonly status: number | undefined;

  constructor(kind: ObjectStoreFailure, operation: string, storeCode?: string, status?: number) {
    const said = [storeCode, status].filter((v) => v !== undefined).join(' ');
    super(`object store ${operation}: ${kind}${said === '' ? '' : ` (${said})`}`);
    this.name = 'ObjectStoreError';
    this.kind = kind;
    this.storeCode = storeCode;
    this.status = status;
  }

  /** A configuration error (bucket missing, no access): the start stops on it, retrying cannot help. */
  get permanent(): boolean {
    return this.kind === 'bucket_missing' || this.kind === 'auth';
  }
}

const AUTH_CODES = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
]);

/** Pure: an error thrown by the AWS SDK (or the socket under it) as an ObjectStoreError of `operation`. */
export function toObjectStoreError(err: unknown, operation: string, signal?: AbortSignal): ObjectStoreError {
  if (err instanceof ObjectStoreError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: unknown;
    code?: unknown;
    Code?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const name = typeof e.name === 'string' ? e.name : undefined;
  const code = typeof e.Code === 'string' ? e.Code : typeof e.code === 'string' ? e.code : name;
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  if (signal?.aborted || name === 'AbortError') return new ObjectStoreError('cancelled', operation, code, status);
  if (code === 'NoSuchBucket') return new ObjectStoreError('bucket_missing', operation, code, status);
  if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || status === 403) {
    return new ObjectStoreError('auth', operation, code, status);
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) {
    return new ObjectStoreError('not_found', operation, code, status);
  }
  return new ObjectStoreError('unavailable', operation, code, status);
}
