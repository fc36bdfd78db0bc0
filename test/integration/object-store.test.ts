import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ObjectStoreConfig } from '../../src/config.ts';
import { ObjectStoreError } from '../../src/storage/object-store-error.ts';
import { createS3ObjectStore, type ObjectStore } from '../../src/storage/object-store.ts';
import { createS3Uploads } from '../../src/storage/upload-store.ts';
import { removeDir, tempDataDir } from '../helper.ts';
import { S3RVER_CREDENTIALS, startTestS3, type TestS3 } from '../support/s3-server.ts';
import { until } from '../support/until.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('S3 object store (against s3rver over HTTP)', () => {
  let s3: TestS3;
  let dir: string;
  const stores: ObjectStore[] = [];
  const open = (over: Partial<ObjectStoreConfig> = {}) => {
    const store = createS3ObjectStore({
      bucket: s3.bucket,
      prefix: 'p/',
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      ...over,
    });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    s3 = await startTestS3();
    dir = await tempDataDir();
  });
  beforeEach(() => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    s3.failWhen(null);
  });
  afterAll(async () => {
    for (const store of stores) store.close();
    vi.unstubAllEnvs();
    await s3.close();
    await removeDir(dir);
  });

  it('puts a file in parts, gets it back byte for byte, lists it and deletes everything under a prefix', async () => {
    const body = randomBytes(19 * MiB);
    const file = path.join(dir, 'big');
    await writeFile(file, body);
    const store = open();
    await store.putFile('jobs/a/upload', file);
    await store.putFile('jobs/b/upload', file);
    // Three parts of 8 MiB at most: streamed in parts, not one PUT of the whole file.
    const parts = s3.requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
    expect(parts.length).toBe(6);
    expect(await s3.objects()).toEqual(['p/jobs/a/upload', 'p/jobs/b/upload']);

    const back = path.join(dir, 'back');
    await store.getFile('jobs/a/upload', back);
    expect(sha(await readFile(back))).toBe(sha(body));

    const listed = [];
    for await (const o of store.list('jobs/')) listed.push(o);
    expect(listed.map((o) => [o.key, o.bytes])).toEqual([
      ['jobs/a/upload', body.length],
      ['jobs/b/upload', body.length],
    ]);
    expect(await store.deleteUnder('jobs/a/')).toBe(1);
    expect(await s3.objects()).toEqual(['p/jobs/b/upload']);
    expect(await store.deleteUnder('jobs/')).toBe(1);
    expect(await s3.objects()).toEqual([]);
  });

  it('aborts a multipart upload the store fails mid-way: no object and no parts are left', async () => {
    const file = path.join(dir, 'mid');
    await writeFile(file, randomBytes(20 * MiB));
    s3.failWhen((r) => r.method === 'PUT' && r.url.includes('partNumber=2'));
    const failure = await open()
      .putFile('jobs/c/upload', file)
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ObjectStoreError);
    expect((failure as ObjectStoreError).kind).toBe('unavailable');
    // The SDK tried the part again before giving up (bounded: 3 attempts).
    expect(s3.requests.filter((r) => r.url.includes('jobs/c/upload?partNumber=2')).length).toBe(3);
    expect(s3.requests.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
    expect(await s3.pendingMultipartUploads()).toEqual([]);
    expect(await s3.objects()).toEqual([]);
  });

  it('a put slower than its limit is aborted: 503 SERVER_BUSY, and no object or parts are left', async () => {
    const file = path.join(dir, 'slow');
    await writeFile(file, randomBytes(10 * MiB));
    let answer = () => undefined as void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    s3.holdAnswers((r) => (r.method === 'PUT' && r.url.includes('jobs/s/upload?partNumber=') ? answered : null));
    const limits: number[] = [];
    const uploads = createS3Uploads({
      objects: open(),
      logger: pino({ level: 'silent' }),
      retryAfterS: 30,
      putLimitMs: (bytes) => (limits.push(bytes), 300),
    });
    const failure = await uploads.save('s', file).catch((err: unknown) => err);
    expect(limits).toEqual([10 * MiB]);
    expect(failure).toMatchObject({ code: 'SERVER_BUSY', details: { resource: 'object_store' } });
    // The parts the store held answer now: the SDK sends no more, and aborts the multipart upload.
    answer();
    s3.holdAnswers(null);
    await until(async () => (await s3.pendingMultipartUploads()).length === 0, 'the multipart upload to be aborted');
    expect(s3.requests.filter((r) => r.url.includes('jobs/s/upload?partNumber=')).length).toBeLessThanOrEqual(2);
    expect(await s3.objects()).toEqual([]);
  });

  it('gets a missing object as not_found and leaves no partial file', async () => {
    const target = path.join(dir, 'missing');
    const failure = await open()
      .getFile('jobs/none/upload', target)
      .catch((err: unknown) => err);
    expect((failure as ObjectStoreError).kind).toBe('not_found');
    await expect(readFile(target)).rejects.toThrow(/ENOENT/);
    await expect(readFile(`${target}.part`)).rejects.toThrow(/ENOENT/);
  });

  it('tells a missing bucket and refused credentials (configuration errors) from a store that is down', async () => {
    await expect(open().probe()).resolves.toBeUndefined();
    await expect(open({ bucket: 'no-such-bucket' }).probe()).rejects.toMatchObject({ kind: 'bucket_missing' });
    // s3rver checks the access key id, not the SigV4 signature: an unknown key id is its way of refusing credentials.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAUNKNOWNKEY');
    await expect(open().probe()).rejects.toMatchObject({ kind: 'auth', permanent: true });
    // The SDK's own error for a refused GET carries the access key id (from the answer's XML) ...
    const raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true });
    const sdkError = await raw.send(new ListObjectsV2Command({ Bucket: s3.bucket })).catch((err: unknown) => err);
    raw.destroy();
    expect(JSON.stringify(sdkError)).toContain('AKIAUNKNOWNKEY');
    // ... what leaves the adapter does not.
    const listing = open().list('');
    const denied = await listing[Symbol.asyncIterator]()
      .next()
      .catch((err: unknown) => err);
    expect(denied).toMatchObject({ kind: 'auth' });
    expect(JSON.stringify({ ...(denied as object), message: (denied as Error).message })).not.toContain(
      'AKIAUNKNOWNKEY',
    );
    await s3.stop();
    try {
      await expect(open().probe()).rejects.toMatchObject({ kind: 'unavailable', permanent: false });
    } finally {
      await s3.start();
    }
  });
});
