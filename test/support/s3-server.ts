import http from 'node:http';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { listeningLine, spawnNode } from './node-process.ts';
import type { Place } from './place.ts';
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

/** What an answer to `request` waits for, or null to answer at once. */
export type AnswerHold = (request: S3Request) => Promise<unknown> | null;

export interface S3Request {
  method: string;
  /** Path and query as sent, e.g. /bucket/prefix/jobs/x/upload?partNumber=2&uploadId=... */
  url: string;
}

/** A bucket on an S3-compatible server, wherever that runs. */
export interface S3Bucket {
  /** The endpoint for S3_ENDPOINT (path style: S3_FORCE_PATH_STYLE=true). */
  endpoint: string;
  bucket: string;
  /** Keys of the objects in the bucket now (complete ones: parts of an unfinished multipart upload are not objects). */
  objects(): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingMultipartUploads(): Promise<string[]>;
  /** Stops the server and removes its files. */
  close(): Promise<void>;
}

export interface TestS3 extends S3Bucket {
  /** Every request the server was sent, in order. */
  requests: S3Request[];
  /** Requests for which this returns true are answered by cutting the connection (a store going away mid-request). */
  failWhen(predicate: ((request: S3Request) => boolean) | null): void;
  /**
   * A request for which `hold` returns a promise is carried out at once, but its answer waits for that promise (a
   * slow store, or a slow network: an object is there while its client does not know yet); null holds nothing.
   */
  holdAnswers(hold: AnswerHold | null): void;
  /** Stops listening (connection refused from now on) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
}

const OBJECT_SUFFIX = '._S3rver_object';
/** Where s3rver keeps the parts of multipart uploads in progress (its store's getResourcePath(bucket, '', 'uploads')). */
const UPLOADS_DIR = '._S3rver_uploads';

interface S3Front {
  server: http.Server;
  requests: S3Request[];
  failWhen(predicate: ((request: S3Request) => boolean) | null): void;
  holdAnswers(hold: AnswerHold | null): void;
  objects(): Promise<string[]>;
  pendingMultipartUploads(): Promise<string[]>;
}

/**
 * s3rver (files in `directory`) with one bucket, behind a front that logs every request. s3rver has no
 * AbortMultipartUpload, which the service relies on to leave nothing behind a failed upload: the front answers it
 * as S3 does (204, the upload's parts gone) and hands every other request to s3rver. s3rver dates an object when
 * its file is written, a multipart one at its completion; S3 dates that one at the upload's initiation (the
 * Last-Modified a listing shows): the front sets it back to the upload's first request, so a slow put's object
 * is as old here as on S3 when it appears.
 */
export async function createS3Front(directory: string, bucket: string): Promise<S3Front> {
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const uploadsDir = s3rver.store.getResourcePath(bucket, undefined, 'uploads');
  if (path.basename(uploadsDir) !== UPLOADS_DIR) throw new Error(`s3rver keeps uploads in ${uploadsDir} now`);
  const requests: S3Request[] = [];
  let failing: ((request: S3Request) => boolean) | null = null;
  let holding: AnswerHold | null = null;
  /** When each multipart upload was first named (its first part follows its initiation at once). */
  const uploadStarts = new Map<string, Date>();

  const server = http.createServer((req, res) => {
    const request = { method: req.method ?? '', url: req.url ?? '' };
    requests.push(request);
    if (failing?.(request)) {
      req.socket.destroy();
      return;
    }
    const url = new URL(request.url, 'http://s3');
    const uploadId = url.searchParams.get('uploadId');
    if (uploadId !== null && !uploadStarts.has(uploadId)) uploadStarts.set(uploadId, new Date());
    const started = uploadId === null ? undefined : uploadStarts.get(uploadId);
    // The last step set runs first: the object is dated before an answer is held.
    const held = holding?.(request) ?? null;
    if (held) beforeAnswer(res, () => held);
    if (request.method === 'POST' && started !== undefined) {
      const object = s3rver.store.getResourcePath(bucket, objectKey(url, bucket), 'object');
      beforeAnswer(res, () => utimes(object, started, started).catch(() => undefined));
    }
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
  return {
    server,
    requests,
    failWhen(predicate) {
      failing = predicate;
    },
    holdAnswers(hold) {
      holding = hold;
    },
    ...bucketFiles(directory, bucket),
  };
}

/** The object key a path-style request names (/bucket/key). */
function objectKey(url: URL, bucket: string): string {
  return decodeURIComponent(url.pathname.slice(bucket.length + 2));
}

/**
 * Runs `step` once the answer is complete on this side, before its end goes out (s3rver's answers here end in one
 * call). A step that fails still lets the answer go: the test that set it sees the failure where it awaits it.
 */
function beforeAnswer(res: http.ServerResponse, step: () => Promise<unknown>): void {
  const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
  res.end = ((...args: unknown[]) => {
    void step()
      .catch(() => undefined)
      .then(() => end(...args));
    return res;
  }) as typeof res.end;
}

/** The bucket's objects and pending uploads, read from s3rver's directory (the test shares its filesystem). */
function bucketFiles(directory: string, bucket: string): Pick<S3Bucket, 'objects' | 'pendingMultipartUploads'> {
  return {
    async objects() {
      const names = (await readdir(path.join(directory, bucket), { recursive: true })).map(String);
      return names
        .filter((n) => n.endsWith(OBJECT_SUFFIX))
        .map((n) => n.slice(0, -OBJECT_SUFFIX.length))
        .sort();
    },
    async pendingMultipartUploads() {
      return readdir(path.join(directory, bucket, UPLOADS_DIR)).catch(() => []);
    },
  };
}

/**
 * An S3-compatible server (createS3Front) in this process on a free 127.0.0.1 port, files in a temp dir; the code
 * under test reaches it through S3_ENDPOINT and path-style addressing, as it would MinIO.
 */
export async function startTestS3(bucket = 'chunkscribe-test'): Promise<TestS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'cs-s3-'));
  const front = await createS3Front(directory, bucket);
  const { server } = front;
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
    requests: front.requests,
    objects: front.objects,
    pendingMultipartUploads: front.pendingMultipartUploads,
    failWhen: front.failWhen,
    holdAnswers: front.holdAnswers,
    stop,
    start: listen,
    async close() {
      if (server.listening) await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

const S3_MAIN = path.resolve(import.meta.dirname, 's3-server-main.ts');

/**
 * The same server as a process of its own at `place` (another host: a network namespace), on `port`. The test
 * still reads the bucket's files from the directory (a namespace shares the filesystem).
 */
export async function startS3Process(place: Place, port: number, bucket = 'chunkscribe-test'): Promise<S3Bucket> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'cs-s3-'));
  const proc = spawnNode(S3_MAIN, [directory, bucket, place.host, String(port)], {
    place,
    name: 's3rver',
    ready: listeningLine,
  });
  try {
    await proc.ready;
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint: await proc.ready,
    bucket,
    ...bucketFiles(directory, bucket),
    async close() {
      await proc.kill9();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The service's env for this server: STORAGE_URL under `prefix`, path style, the region s3rver signs for. */
export function s3Env(s3: Pick<S3Bucket, 'endpoint' | 'bucket'>, prefix = 'cs/'): Record<string, string> {
  return {
    STORAGE_URL: `s3://${s3.bucket}/${prefix}`,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
  };
}
