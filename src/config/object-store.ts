import type { ParsedEnv } from './env.ts';

/** An S3-compatible bucket for the uploads; credentials come from the AWS SDK's default chain, never from here. */
export interface ObjectStoreConfig {
  bucket: string;
  /** Key prefix, '' or ending in '/': every object of the service is under it. */
  prefix: string;
  /** Unset: AWS. Set for MinIO, Ceph, R2, GCS interop (http or https). */
  endpoint: string | undefined;
  region: string;
  /** Bucket in the path (http://host/bucket/key), not the host name: what most non-AWS stores need. */
  forcePathStyle: boolean;
}

/** S3 bucket names: 3 to 63 lower-case letters, digits, dots and hyphens (the rules every S3 store shares). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A key prefix: path segments of safe characters, no empty or dot segments. */
const KEY_PREFIX = /^(?:[A-Za-z0-9_.-]+\/)*$/;

/** STORAGE_URL and the S3_ settings: the bucket, or null for local disk; an issue when the URL is not one. */
export function objectStoreConfig(e: ParsedEnv): { objectStore: ObjectStoreConfig | null; issues: string[] } {
  if (e.STORAGE_URL === undefined) return { objectStore: null, issues: [] };
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(e.STORAGE_URL);
  const bucket = m?.[1] ?? '';
  const rawPrefix = m?.[2] ?? '';
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`;
  if (!m || !BUCKET_NAME.test(bucket) || !KEY_PREFIX.test(prefix) || /(^|\/)\.{1,2}\//.test(prefix)) {
    return {
      objectStore: null,
      issues: [
        'STORAGE_URL: must be s3://bucket or s3://bucket/prefix (bucket: 3 to 63 of a-z 0-9 . -; prefix: letters, digits, _ . - and /)',
      ],
    };
  }
  const objectStore = {
    bucket,
    prefix,
    endpoint: e.S3_ENDPOINT,
    region: e.S3_REGION,
    forcePathStyle: e.S3_FORCE_PATH_STYLE === 'true' || e.S3_FORCE_PATH_STYLE === '1',
  };
  return { objectStore, issues: [] };
}
