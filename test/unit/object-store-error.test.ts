import { describe, expect, it } from 'vitest';
import { toObjectStoreError, type ObjectStoreFailure } from '../../src/storage/object-store-error.ts';

/** Errors shaped as the AWS SDK v3 throws them: a service error (name, Code, $metadata) or a socket error (code). */
const service = (name: string, status: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, Code: name, $metadata: { httpStatusCode: status }, ...extra });
const socket = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe('toObjectStoreError: the SDK error as the service sees it', () => {
  it.each<[string, unknown, ObjectStoreFailure, string | undefined, number | undefined]>([
    ['missing bucket', service('NoSuchBucket', 404), 'bucket_missing', 'NoSuchBucket', 404],
    ['HeadBucket 403 (no body)', service('Forbidden', 403), 'auth', 'Forbidden', 403],
    [
      'unknown key id',
      service('InvalidAccessKeyId', 403, { AWSAccessKeyId: 'AKIA' }),
      'auth',
      'InvalidAccessKeyId',
      403,
    ],
    ['bad signature', service('SignatureDoesNotMatch', 403), 'auth', 'SignatureDoesNotMatch', 403],
    [
      'no credentials found',
      Object.assign(new Error('x'), { name: 'CredentialsProviderError' }),
      'auth',
      'CredentialsProviderError',
      undefined,
    ],
    ['missing object', service('NoSuchKey', 404), 'not_found', 'NoSuchKey', 404],
    ['HeadObject 404', service('NotFound', 404), 'not_found', 'NotFound', 404],
    ['throttled', service('SlowDown', 503), 'unavailable', 'SlowDown', 503],
    ['server error', service('InternalError', 500), 'unavailable', 'InternalError', 500],
    ['connection refused', socket('ECONNREFUSED'), 'unavailable', 'ECONNREFUSED', undefined],
    ['connection reset', socket('ECONNRESET'), 'unavailable', 'ECONNRESET', undefined],
    ['SDK timeout', Object.assign(new Error('t'), { name: 'TimeoutError' }), 'unavailable', 'TimeoutError', undefined],
    ['aborted', Object.assign(new Error('a'), { name: 'AbortError' }), 'cancelled', 'AbortError', undefined],
    ['not an Error', 'boom', 'unavailable', undefined, undefined],
  ])('%s', (_what, err, kind, storeCode, status) => {
    const mapped = toObjectStoreError(err, 'get');
    expect({ kind: mapped.kind, storeCode: mapped.storeCode, status: mapped.status }).toEqual({
      kind,
      storeCode,
      status,
    });
    // Only these facts travel: nothing else of the SDK's error (which can hold the key id) is kept.
    expect(Object.keys(mapped).sort()).toEqual(['kind', 'name', 'status', 'storeCode']);
    expect(mapped.cause).toBeUndefined();
  });

  it('a caller that gave up sees cancelled whatever the socket said, and configuration errors are permanent', () => {
    const gaveUp = new AbortController();
    gaveUp.abort();
    expect(toObjectStoreError(socket('ECONNRESET'), 'get', gaveUp.signal).kind).toBe('cancelled');
    expect(toObjectStoreError(service('NoSuchBucket', 404), 'put').permanent).toBe(true);
    expect(toObjectStoreError(service('AccessDenied', 403), 'put').permanent).toBe(true);
    expect(toObjectStoreError(socket('ECONNREFUSED'), 'put').permanent).toBe(false);
  });
});
