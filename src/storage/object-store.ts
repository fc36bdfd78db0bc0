import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStoreConfig } from '../config.ts';
import { toObjectStoreError, ObjectStoreError } from './object-store-error.ts';

/** One object as a listing shows it; `key` is relative to the configured prefix. */
export interface StoredObject {
  key: string;
  bytes: number;
  /** The store's date of the object (S3: a multipart upload's initiation, a single put's), ms; null when not given. */
  modifiedMs: number | null;
}

/**
 * An S3-compatible bucket under one key prefix, reduced to what the service does with it: put a local file,
 * get one back to a local file, delete and list under a prefix. Every failure is an ObjectStoreError.
 */
export interface ObjectStore {
  /** s3://bucket/prefix, for logs and health (no endpoint, no credentials). */
  readonly location: string;
  /** Streams the file up (multipart above one part; an upload that fails is aborted, leaving no parts). */
  putFile(key: string, file: string, signal?: AbortSignal): Promise<void>;
  /** Streams the object to `file`, through a temporary name: `file` exists only complete. */
  getFile(key: string, file: string, signal?: AbortSignal): Promise<void>;
  /** Deletes every object whose key starts with `keyPrefix`; resolves with how many. */
  deleteUnder(keyPrefix: string): Promise<number>;
  /** Every object whose key starts with `keyPrefix`, a page at a time. */
  list(keyPrefix: string): AsyncIterable<StoredObject>;
  /** Whether the bucket answers to these credentials (HeadBucket). */
  probe(signal?: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * Bounds: a part is held in memory while it goes up, so one upload holds at most PART_BYTES × PART_QUEUE
 * (32 MiB) whatever the file's size; 10 000 parts of 8 MiB reach 78 GiB, far over MAX_UPLOAD_BYTES' range of use.
 */
const PART_BYTES = 8 * 1024 * 1024;
const PART_QUEUE = 4;
/** Each request: its connection within 5 s, and no 30 s without a byte either way; then the SDK tries again. */
const CONNECT_TIMEOUT_MS = 5_000;
const SOCKET_IDLE_MS = 30_000;
/** Tries per request (the SDK's standard retry: exponential backoff with jitter, on 5xx, throttling, sockets). */
const MAX_ATTEMPTS = 3;
/** DeleteObjects takes at most 1000 keys. */
const DELETE_BATCH = 1000;

export function createS3ObjectStore(config: ObjectStoreConfig): ObjectStore {
  const client = new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_MS },
    // Checksums only where the API requires them: the SDK's default (a CRC trailer on every upload, sent
    // aws-chunked) is not understood by many S3-compatible stores, and TLS and Content-MD5/ETag already guard
    // the bytes. No `logger`: the SDK then logs nothing, credentials included.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const { bucket, prefix } = config;
  const full = (key: string) => `${prefix}${key}`;

  return {
    location: `s3://${bucket}/${prefix}`,

    async putFile(key, file, signal) {
      const body = createReadStream(file);
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: full(key), Body: body },
        partSize: PART_BYTES,
        queueSize: PART_QUEUE,
        leavePartsOnError: false,
      });
      const onAbort = () => void upload.abort().catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await upload.done();
      } catch (err) {
        throw toObjectStoreError(err, 'put', signal);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        body.destroy();
      }
    },

    async getFile(key, file, signal) {
      const partial = `${file}.part`;
      try {
        const answer = await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: full(key) }),
          signal ? { abortSignal: signal } : {},
        );
        if (!answer.Body) throw new ObjectStoreError('unavailable', 'get', 'EmptyBody');
        await pipeline(answer.Body as Readable, createWriteStream(partial), signal ? { signal } : {});
        await rename(partial, file);
      } catch (err) {
        await rm(partial, { force: true });
        // This host's disk (full, say) is not the store's fault: the caller's storage guard decides on it.
        if (isLocalFileError(err)) throw err;
        throw toObjectStoreError(err, 'get', signal);
      }
    },

    async deleteUnder(keyPrefix) {
      let deleted = 0;
      let batch: string[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const answer = await client
          .send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
          )
          .catch((err: unknown) => {
            throw toObjectStoreError(err, 'delete');
          });
        const failed = answer.Errors ?? [];
        if (failed.length > 0) throw toObjectStoreError({ Code: failed[0]?.Code }, 'delete');
        deleted += batch.length;
        batch = [];
      };
      for await (const object of this.list(keyPrefix)) {
        batch.push(full(object.key));
        if (batch.length === DELETE_BATCH) await flush();
      }
      await flush();
      return deleted;
    },

    async *list(keyPrefix) {
      let token: string | undefined;
      do {
        const page = await client
          .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: full(keyPrefix), ContinuationToken: token }))
          .catch((err: unknown) => {
            throw toObjectStoreError(err, 'list');
          });
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined || !object.Key.startsWith(prefix)) continue;
          yield {
            key: object.Key.slice(prefix.length),
            bytes: object.Size ?? 0,
            modifiedMs: object.LastModified?.getTime() ?? null,
          };
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    },

    async probe(signal) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }), signal ? { abortSignal: signal } : {});
      } catch (err) {
        const failure = toObjectStoreError(err, 'head bucket', signal);
        // HeadBucket has no body: a missing bucket is a bare 404.
        throw failure.kind === 'not_found'
          ? new ObjectStoreError('bucket_missing', 'head bucket', 'NotFound', 404)
          : failure;
      }
    },

    close() {
      client.destroy();
    },
  };
}

/** An error of the local file system (it names a path), as opposed to one of the connection to the store. */
function isLocalFileError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { path?: unknown }).path === 'string';
}
