/**
 * The `cluster` profile of docker/compose.yaml (PostgreSQL, Redis, MinIO, N api and M worker containers behind a
 * Caddy proxy), checked without Docker, which does not run where this project is developed: the compose file is
 * read and its promises checked (no volume shared between api and worker, a configuration the service accepts,
 * secrets only from .env, start order, scaling); Debian's caddy validates and adapts the proxy's Caddyfile; the
 * MinIO set-up script runs against a stand-in `mc`; the bucket policy is checked against the S3 calls in
 * src/storage; the README's commands against the profile's services.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { runCommand, type CommandRun } from '../support/run-command.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  command?: string[];
  entrypoint?: string[];
  ports?: string[];
  container_name?: string;
  volumes?: string[];
  env_file?: Array<{ path: string; required: boolean }>;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const composeText = read('docker/compose.yaml');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes: object };
const service = (name: string): Service => {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker/compose.yaml has no service ${name}`);
  return found;
};
const cluster = Object.entries(compose.services)
  .filter(([, s]) => s.profiles?.includes('cluster'))
  .map(([name]) => name);
const API = 'cluster-api';
const WORKER = 'cluster-worker';

/** Compose's interpolation as this file uses it: `${NAME}`, `${NAME:-default}`, `$$`; anything else is refused. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}/g,
    (match, name?: string, def?: string) => {
      if (match === '$$') return '$';
      if (name === undefined) throw new Error(`interpolation this test does not know: ${match}`);
      const set = vars[name];
      return set !== undefined && set !== '' ? set : (def ?? '');
    },
  );
}

/** What a person puts in .env for the cluster (README "Scaling out"). */
const dotEnv = {
  POSTGRES_PASSWORD: 'pgsecret0123',
  MINIO_ROOT_USER: 'minio-root',
  MINIO_ROOT_PASSWORD: 'root-secret-0123',
  AWS_ACCESS_KEY_ID: 'chunkscribe',
  AWS_SECRET_ACCESS_KEY: 'service-secret-0123',
};

describe('docker/compose.yaml cluster profile', () => {
  it('is PostgreSQL, Redis, MinIO with its one-shot set-up, the api and worker containers and the proxy; the other profiles keep theirs', () => {
    expect([...cluster].sort()).toEqual([API, WORKER, 'minio', 'minio-init', 'postgres', 'proxy', 'redis'].sort());
    expect(service('redis').profiles).toEqual(['scale', 'cluster']);
    expect(service('api').profiles).toBeUndefined();
    expect(service('worker').profiles).toEqual(['scale']);
    expect(service('api').volumes).toEqual(['data:/data']);
    expect(service('worker').volumes).toEqual(['data:/data']);
    for (const name of [API, WORKER]) {
      expect(service(name).build, name).toEqual(service('api').build);
      expect(service(name).image, name).toBe(service('api').image);
    }
  });

  it('gives every api and worker container its own scratch (an anonymous volume at DATA_DIR) and shares no named volume between services', () => {
    for (const name of [API, WORKER]) {
      const s = service(name);
      // An entry without a colon is an anonymous volume: one per container, never shared.
      expect(s.volumes, name).toEqual([s.environment?.DATA_DIR]);
      expect(s.environment?.DATA_DIR, name).toBe('/data');
    }
    const users = new Map<string, string[]>();
    for (const name of cluster) {
      for (const volume of service(name).volumes ?? []) {
        const source = volume.split(':')[0] as string;
        if (!volume.includes(':') || source.startsWith('.') || source.startsWith('/')) continue;
        users.set(source, [...(users.get(source) ?? []), name]);
      }
    }
    expect(Object.fromEntries(users)).toEqual({
      redis: ['redis'],
      postgres: ['postgres'],
      minio: ['minio'],
    });
    for (const volume of users.keys()) expect(Object.keys(compose.volumes)).toContain(volume);
  });

  it("gives the api and the worker containers a configuration the service accepts, on the profile's own PostgreSQL, Redis and bucket", () => {
    const postgres = service('postgres').environment ?? {};
    const minioInit = service('minio-init').environment ?? {};
    for (const [name, role] of [
      [API, 'api'],
      [WORKER, 'worker'],
    ] as const) {
      const s = service(name);
      const env = Object.fromEntries(
        Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), dotEnv)]),
      );
      const config = loadConfig(env);
      expect(config.scale.role, name).toBe(role);
      expect(config.dataDir, name).toBe('/data');

      const db = new URL(config.databaseUrl ?? '');
      expect([db.protocol, db.hostname, db.port, db.pathname], name).toEqual([
        'postgres:',
        'postgres',
        '5432',
        `/${postgres.POSTGRES_DB}`,
      ]);
      expect([db.username, db.password], name).toEqual([postgres.POSTGRES_USER, dotEnv.POSTGRES_PASSWORD]);
      // The same .env variable on both sides.
      expect(s.environment?.DATABASE_URL, name).toContain(postgres.POSTGRES_PASSWORD);

      const redis = new URL(config.redisUrl ?? '');
      expect([redis.hostname, redis.port], name).toEqual(['redis', '6379']);

      expect(config.objectStore, name).toMatchObject({ bucket: minioInit.BUCKET, forcePathStyle: true });
      expect(config.objectStore?.endpoint, name).toBe(minioInit.MINIO_URL);
      expect(new URL(minioInit.MINIO_URL ?? '').hostname).toBe('minio');
      // The key minio-init creates is the one the AWS SDK finds in the containers' environment: .env through
      // env_file (not `environment`, which holds only the service's own settings: image-files.test.ts).
      expect(s.env_file, name).toEqual([{ path: '../.env', required: false }]);
      expect(s.environment, name).not.toHaveProperty('AWS_ACCESS_KEY_ID');
    }
    expect(minioInit.SERVICE_ACCESS_KEY).toBe('${AWS_ACCESS_KEY_ID:-}');
    expect(minioInit.SERVICE_SECRET_KEY).toBe('${AWS_SECRET_ACCESS_KEY:-}');
  });

  it('writes no secret into the file (each comes from .env) and uses no ${VAR:?} (Compose checks it in every profile)', () => {
    // Values only: the file's comments may name the form.
    expect(JSON.stringify(parse(composeText))).not.toMatch(/\$\{[A-Z_]+:?\?/);
    const secrets: Array<[string, string]> = [];
    for (const name of cluster) {
      for (const [key, value] of Object.entries(service(name).environment ?? {})) {
        if (/PASSWORD|SECRET|ACCESS_KEY|ROOT_USER/.test(key)) secrets.push([`${name}.${key}`, String(value)]);
      }
    }
    expect(secrets.map(([key]) => key).sort()).toEqual(
      [
        'minio-init.MINIO_ROOT_PASSWORD',
        'minio-init.MINIO_ROOT_USER',
        'minio-init.SERVICE_ACCESS_KEY',
        'minio-init.SERVICE_SECRET_KEY',
        'minio.MINIO_ROOT_PASSWORD',
        'minio.MINIO_ROOT_USER',
        'postgres.POSTGRES_PASSWORD',
      ].sort(),
    );
    for (const [key, value] of secrets) expect(value, key).toMatch(/^\$\{[A-Z_]+:-\}$/);
    for (const name of [API, WORKER]) {
      expect(new URL(interpolate(service(name).environment?.DATABASE_URL ?? '', {})).password, name).toBe('');
    }
  });

  it('starts each service after what it needs, and waits for health only on services that report it', () => {
    const deps = (name: string) =>
      Object.fromEntries(Object.entries(service(name).depends_on ?? {}).map(([d, c]) => [d, c.condition]));
    for (const name of [API, WORKER]) {
      expect(deps(name), name).toEqual({
        postgres: 'service_healthy',
        redis: 'service_healthy',
        'minio-init': 'service_completed_successfully',
      });
    }
    expect(deps('minio-init')).toEqual({ minio: 'service_healthy' });
    expect(deps('proxy')).toEqual({ [API]: 'service_healthy' });
    const dockerfileHealthcheck = /^HEALTHCHECK /m.test(read('docker/Dockerfile'));
    for (const name of cluster) {
      for (const [dep, condition] of Object.entries(deps(name))) {
        expect(cluster, `${name} -> ${dep}`).toContain(dep);
        if (condition !== 'service_healthy') continue;
        const target = service(dep);
        const reports = target.healthcheck !== undefined || (target.build !== undefined && dockerfileHealthcheck);
        expect(reports, `${dep} has a healthcheck`).toBe(true);
      }
    }
    expect(service('minio-init').entrypoint).toEqual(['/bin/sh', '/init/init.sh']);
    expect(service('minio-init').volumes).toEqual(['./minio:/init:ro']);
    expect(service('minio-init').environment?.POLICY_FILE).toBe('/init/policy.json');
  });

  it('scales the api and the worker with --scale: nothing in them is bound to one container; the proxy alone publishes PORT', () => {
    for (const name of [API, WORKER]) {
      expect(service(name).ports, name).toBeUndefined();
      expect(service(name).container_name, name).toBeUndefined();
    }
    const published = cluster.filter((name) => service(name).ports !== undefined);
    expect(published).toEqual(['proxy']);
    expect(service('proxy').ports).toEqual(['${PORT:-3000}:80']);
  });
});

describe('docker/caddy/Caddyfile', () => {
  interface Handler {
    handler: string;
    dynamic_upstreams?: { source: string; name: string; port: string };
    upstreams?: unknown[];
  }
  interface Adapted {
    apps: { http: { servers: Record<string, { listen: string[]; routes: Array<{ handle: Handler[] }> }> } };
  }

  async function caddy(args: string[]): Promise<CommandRun> {
    try {
      return await runCommand('caddy', args, {}, root);
    } catch (err) {
      throw new Error(`caddy did not run (apt-get install caddy, or run scripts/test.sh): ${String(err)}`, {
        cause: err,
      });
    }
  }

  it('is mounted where the caddy image reads it, and passes caddy validate', async () => {
    expect(service('proxy').volumes).toEqual(['./caddy/Caddyfile:/etc/caddy/Caddyfile:ro']);
    const run = await caddy(['validate', '--config', 'docker/caddy/Caddyfile', '--adapter', 'caddyfile']);
    expect(run.stdout + run.stderr).toContain('Valid configuration');
    expect(run.code).toBe(0);
  });

  it('sends every request to the replicas of the api service, looked up by name, on the port they listen on', async () => {
    const run = await caddy(['adapt', '--config', 'docker/caddy/Caddyfile', '--adapter', 'caddyfile']);
    expect(run.code).toBe(0);
    const servers = Object.values((JSON.parse(run.stdout) as Adapted).apps.http.servers);
    expect(servers.map((s) => s.listen)).toEqual([[':80']]);
    const handlers = servers.flatMap((s) => s.routes.flatMap((r) => r.handle));
    expect(handlers.map((h) => h.handler)).toEqual(['reverse_proxy']);
    expect(handlers[0]?.upstreams).toBeUndefined();
    expect(handlers[0]?.dynamic_upstreams).toMatchObject({
      source: 'a',
      name: API,
      port: service(API).environment?.PORT,
    });
  });
});

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

describe('README "Scaling out"', () => {
  it('runs the cluster with services the profile has, scaling the api and the worker', () => {
    const readme = read('README.md').replace(/\\\n\s*/g, '');
    const commands = readme.split('\n').filter((line) => /docker compose .*--profile cluster up/.test(line));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      const scaled = [...command.matchAll(/--scale ([\w-]+)=\d+/g)].map((m) => m[1]);
      expect(scaled, command).toEqual([API, WORKER]);
      // The services named after the options: what `up` starts (with what they depend on).
      const named = /--scale [\w-]+=\d+((?: +[\w-]+)+) *(?:#.*)?$/.exec(command)?.[1]?.trim().split(/ +/);
      expect(named, command).toEqual(['proxy', WORKER]);
      for (const name of named ?? []) expect(cluster, command).toContain(name);
    }
  });
});
