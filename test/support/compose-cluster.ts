/**
 * docker/compose.yaml's cluster profile as the tests read it (test/integration/cluster-*.test.ts): the parsed
 * services, Compose's interpolation as the file uses it, and the .env lines README "Scaling out" tells a person to
 * add.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

export interface ComposeService {
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

export const composeText = read('docker/compose.yaml');
export const compose = parse(composeText, { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: object;
};

export function service(name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker/compose.yaml has no service ${name}`);
  return found;
}

/** The services of the `cluster` profile, in file order. */
export const cluster = Object.entries(compose.services)
  .filter(([, s]) => s.profiles?.includes('cluster'))
  .map(([name]) => name);
export const API = 'cluster-api';
export const WORKER = 'cluster-worker';

/** Compose's interpolation as this file uses it: `${NAME}`, `${NAME:-default}`, `$$`; anything else is refused. */
export function interpolate(value: string, vars: Record<string, string>): string {
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
export const dotEnv = {
  POSTGRES_PASSWORD: 'pgsecret0123',
  MINIO_ROOT_USER: 'minio-root',
  MINIO_ROOT_PASSWORD: 'root-secret-0123',
  AWS_ACCESS_KEY_ID: 'chunkscribe',
  AWS_SECRET_ACCESS_KEY: 'service-secret-0123',
};
