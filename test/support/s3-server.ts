import http from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

/** What s3rver (no type declarations of its own) offers that this file uses. */
interface S3rverInstance {
  callback(): http.RequestListener;
  configureBuckets(): Promise<void>;
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** s3rver's own account: the credentials a test gives the service through the AWS SDK's default chain. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } as const;

export interface S3Request {
  method: string;
  /** Path and query as sent, e.g. /bucket/prefix/jobs/x/upload?partNumber=2&uploadId=... */
  url: string;
}

export interface TestS3 {
  /** The endpoint for S3_ENDPOINT (path style: S3_FORCE_PATH_STYLE=true). */
  endpoint: string;
  bucket: string;
  /** Every request the server was sent, in order. */
  requests: S3Request[];
  /** Keys of the objects in the bucket now (complete ones: parts of an unfinished multipart upload are not objects). */
  objects(): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingMultipartUploads(): Promise<string[]>;
  /** Requests for which this returns true are answered by cutting the connection (a store going away mid-request). */
  failWhen(predicate: ((request: S3Request) => boolean) | null): void;
  /** Stops listening (connection refused from now on) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const OBJECT_SUFFIX = '._S3rver_object';

/**
 * An S3-compatible server (npm s3rver, files in a temp dir) on a free 127.0.0.1 port with one bucket; the code under
 * test reaches it through S3_ENDPOINT and path-style addressing, as it would MinIO. s3rver has no
 * AbortMultipartUpload, which the service relies on to leave nothing behind a failed upload: this front answers it
 * as S3 does (204, the upload's parts gone) and hands every other request to s3rver.
 */
export async function startTestS3(bucket = 'chunkscribe-test'): Promise<TestS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'cs-s3-'));
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const uploadsDir = s3rver.store.getResourcePath(bucket, undefined, 'uploads');
  const requests: S3Request[] = [];
  let failing: ((request: S3Request) => boolean) | null = null;

  const server = http.createServer((req, res) => {
    const request = { method: req.method ?? '', url: req.url ?? '' };
    requests.push(request);
    if (failing?.(request)) {
      req.socket.destroy();
      return;
    }
    const url = new URL(request.url, 'http://s3');
    const uploadId = url.searchParams.get('uploadId');
    if (request.method === 'DELETE' && uploadId !== null) {
      req.resume();
      if (!/^[0-9a-f]+$/.test(uploadId)) {
        res.writeHead(404).end();
        return;
      }
      void rm(path.join(uploadsDir, uploadId), { recursive: true, force: true }).then(() => res.writeHead(204).end());
      return;
    }
    handle(req, res);
  });
  const port = await freePort();
  const listen = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen();

  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    requests,
    async objects() {
      const root = path.join(directory, bucket);
      const names = (await readdir(root, { recursive: true })).map(String);
      return names
        .filter((n) => n.endsWith(OBJECT_SUFFIX))
        .map((n) => n.slice(0, -OBJECT_SUFFIX.length))
        .sort();
    },
    async pendingMultipartUploads() {
      return readdir(uploadsDir).catch(() => []);
    },
    failWhen(predicate) {
      failing = predicate;
    },
    stop,
    start: listen,
    async close() {
      if (server.listening) await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The service's env for this server: STORAGE_URL under `prefix`, path style, the region s3rver signs for. */
export function s3Env(s3: TestS3, prefix = 'cs/'): Record<string, string> {
  return {
    STORAGE_URL: `s3://${s3.bucket}/${prefix}`,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
  };
}
