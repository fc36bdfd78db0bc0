/**
 * The `cluster` profile of docker/compose.yaml (PostgreSQL, Redis, MinIO, N api and M worker containers behind a
 * Caddy proxy), checked without Docker, which does not run where this project is developed: the compose file is
 * read and its promises checked (no volume shared between api and worker, a configuration the service accepts,
 * secrets only from .env, start order, scaling), and the README's commands against the profile's services. The
 * proxy: cluster-proxy.test.ts; the MinIO files: cluster-minio.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import {
  API,
  WORKER,
  cluster,
  compose,
  composeText,
  dotEnv,
  interpolate,
  read,
  service,
} from '../support/compose-cluster.ts';

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
    // Over TCP: the image's temporary server, up while it initialises a new database, listens on the socket only.
    expect(service('postgres').healthcheck?.test).toEqual(expect.arrayContaining(['pg_isready', '-h', '127.0.0.1']));
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
    // On this machine only until the operator sets API_KEYS and drops the address (the containers' open mode
    // serves everyone who reaches them: OPEN_MODE_CLIENTS=any).
    expect(service('proxy').ports).toEqual(['127.0.0.1:${PORT:-3000}:80']);
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
