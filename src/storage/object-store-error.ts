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

/** What an SDK or socket error says about itself: its name, its code (the store's, else the socket's), the status. */
function facts(err: unknown): { name?: string; code?: string; status?: number } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const meta = e.$metadata as { httpStatusCode?: unknown } | undefined;
  const name = str(e.name);
  const status = typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
  return { name, code: str(e.Code) ?? str(e.code) ?? name, status };
}

function kindOf(name?: string, code?: string, status?: number): ObjectStoreFailure {
  if (name === 'AbortError') return 'cancelled';
  if (code === 'NoSuchBucket') return 'bucket_missing';
  if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || status === 403) return 'auth';
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return 'not_found';
  return 'unavailable';
}

/** Pure: an error thrown by the AWS SDK (or the socket under it) as an ObjectStoreError of `operation`. */
export function toObjectStoreError(err: unknown, operation: string, signal?: AbortSignal): ObjectStoreError {
  if (err instanceof ObjectStoreError) return err;
  const { name, code, status } = facts(err);
  const kind = signal?.aborted ? 'cancelled' : kindOf(name, code, status);
  return new ObjectStoreError(kind, operation, code, status);
}
