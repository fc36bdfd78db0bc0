/**
 * The MinIO files the compose `cluster` profile mounts, checked without Docker: the set-up script runs against a
 * stand-in `mc` (its calls, its refusals); the bucket policy is checked against the S3 calls in src/storage. The
 * compose services: cluster-files.test.ts; the proxy: cluster-proxy.test.ts.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { API, dotEnv, read, root, service } from '../support/compose-cluster.ts';
import { runCommand, type CommandRun } from '../support/run-command.ts';

describe('docker/minio', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** init.sh with a stand-in `mc` that records its arguments. */
  async function init(env: Record<string, string>): Promise<CommandRun & { calls: string[] }> {
    const dir = mkdtempSync(path.join(tmpdir(), 'minio-init-'));
    dirs.push(dir);
    const log = path.join(dir, 'mc.log');
    writeFileSync(path.join(dir, 'mc'), `#!/bin/sh\necho "$*" >> "${log}"\n`);
    chmodSync(path.join(dir, 'mc'), 0o755);
    const compose = service('minio-init').environment ?? {};
    const run = await runCommand('sh', [path.join(root, 'docker/minio/init.sh')], {
      PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`,
      MINIO_URL: compose.MINIO_URL ?? '',
      BUCKET: compose.BUCKET ?? '',
      POLICY_FILE: '/init/policy.json',
      ...env,
    });
    let calls: string[] = [];
    try {
      calls = readFileSync(log, 'utf8').trim().split('\n');
    } catch {
      // mc was never called
    }
    return { ...run, calls };
  }

  const keys = {
    MINIO_ROOT_USER: dotEnv.MINIO_ROOT_USER,
    MINIO_ROOT_PASSWORD: dotEnv.MINIO_ROOT_PASSWORD,
    SERVICE_ACCESS_KEY: dotEnv.AWS_ACCESS_KEY_ID,
    SERVICE_SECRET_KEY: dotEnv.AWS_SECRET_ACCESS_KEY,
  };

  it('init.sh creates the bucket, its policy and the service key with it, and prints no secret', async () => {
    const run = await init(keys);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.calls).toEqual([
      `alias set cluster http://minio:9000 ${keys.MINIO_ROOT_USER} ${keys.MINIO_ROOT_PASSWORD}`,
      'mb --ignore-existing cluster/chunkscribe',
      'admin policy create cluster chunkscribe-service /init/policy.json',
      `admin user add cluster ${keys.SERVICE_ACCESS_KEY} ${keys.SERVICE_SECRET_KEY}`,
      `admin policy attach cluster chunkscribe-service --user ${keys.SERVICE_ACCESS_KEY}`,
    ]);
    expect(run.stdout).not.toContain(keys.MINIO_ROOT_PASSWORD);
    expect(run.stdout).not.toContain(keys.SERVICE_SECRET_KEY);
  });

  it.each([
    ['MINIO_ROOT_USER', { MINIO_ROOT_USER: '' }, 'set MINIO_ROOT_USER in .env'],
    ['MINIO_ROOT_PASSWORD', { MINIO_ROOT_PASSWORD: 'short' }, 'set MINIO_ROOT_PASSWORD in .env'],
    ['AWS_ACCESS_KEY_ID', { SERVICE_ACCESS_KEY: '' }, 'set AWS_ACCESS_KEY_ID in .env'],
    ['AWS_SECRET_ACCESS_KEY', { SERVICE_SECRET_KEY: '' }, 'set AWS_SECRET_ACCESS_KEY in .env'],
    [
      'the root user as the service key',
      { SERVICE_ACCESS_KEY: keys.MINIO_ROOT_USER },
      'AWS_ACCESS_KEY_ID must not be MINIO_ROOT_USER',
    ],
  ])('init.sh refuses %s before it calls mc', async (_what, bad, message) => {
    const run = await init({ ...keys, ...bad });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`minio-init: ${message}`);
    expect(run.calls).toEqual([]);
  });

  it('policy.json allows the S3 calls of src/storage on the bucket of STORAGE_URL and nothing else', () => {
    const policy = JSON.parse(read('docker/minio/policy.json')) as {
      Statement: Array<{ Effect: string; Action: string[]; Resource: string[] }>;
    };
    const bucket = service('minio-init').environment?.BUCKET;
    expect(service(API).environment?.STORAGE_URL).toBe(`s3://${bucket}`);
    const allowed = new Set<string>();
    for (const statement of policy.Statement) {
      expect(statement.Effect).toBe('Allow');
      for (const resource of statement.Resource) {
        expect([`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`]).toContain(resource);
        for (const action of statement.Action)
          allowed.add(`${action} ${resource.endsWith('/*') ? 'object' : 'bucket'}`);
      }
    }
    // The IAM action each call of the SDK needs; a call not listed here fails the test until it is added (and
    // the policy checked).
    const needs: Record<string, string[]> = {
      HeadBucketCommand: ['s3:ListBucket bucket'],
      ListObjectsV2Command: ['s3:ListBucket bucket'],
      GetObjectCommand: ['s3:GetObject object'],
      DeleteObjectsCommand: ['s3:DeleteObject object'],
      // lib-storage's Upload: PutObject, or CreateMultipartUpload/UploadPart/CompleteMultipartUpload (all
      // s3:PutObject) and AbortMultipartUpload when it fails.
      Upload: ['s3:PutObject object', 's3:AbortMultipartUpload object'],
    };
    const source = readdirSync(path.join(root, 'src/storage'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => read(`src/storage/${f}`))
      .join('\n');
    const calls = new Set([...source.matchAll(/new (\w+Command|Upload)\(/g)].map((m) => m[1] as string));
    expect([...calls].sort()).toEqual(Object.keys(needs).sort());
    const required = new Set([...calls].flatMap((c) => needs[c] ?? []));
    expect([...allowed].sort()).toEqual([...required].sort());
  });
});
