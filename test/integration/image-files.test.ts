/**
 * Docker does not run on the machines this project is developed on, so the image's files are checked here by
 * what can be checked without it: the workflow and compose file parse and refer to files, build args and
 * settings that exist; the Dockerfile's stages and build-context paths line up; the node_modules pruning script
 * removes what it should and nothing else; the documented .env.example command prints the committed file.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema } from '../../src/config.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const dockerfile = read('docker/Dockerfile');

/** Names of the Dockerfile's ARGs (global and per stage). */
const dockerArgs = new Set([...dockerfile.matchAll(/^ARG ([A-Z_]+)/gm)].map((m) => m[1]));

/** Top-level entries of .dockerignore and the paths it re-includes with `!`. */
function dockerignore(): { excluded: Set<string>; reincluded: Set<string> } {
  const lines = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return {
    excluded: new Set(lines.filter((l) => !l.startsWith('!'))),
    reincluded: new Set(lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1))),
  };
}

function inBuildContext(source: string): boolean {
  const { excluded, reincluded } = dockerignore();
  if (reincluded.has(source)) return true;
  const first = source.split('/')[0] as string;
  return !excluded.has(source) && !excluded.has(first);
}

interface Step {
  uses?: string;
  if?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: { push: { tags: string[] }; pull_request?: unknown };
  permissions: Record<string, string>;
  jobs: Record<
    string,
    {
      needs?: string;
      permissions?: Record<string, string>;
      strategy?: { matrix: { include: Array<Record<string, string>> } };
      steps: Step[];
    }
  >;
}

describe('.github/workflows/image.yml', () => {
  const workflow = parse(read('.github/workflows/image.yml')) as Workflow;
  const image = workflow.jobs.image;
  const steps = image?.steps ?? [];
  const step = (action: string): Step => {
    const found = steps.find((s) => s.uses?.split('@')[0] === action);
    if (found === undefined) throw new Error(`no step uses ${action}`);
    return found;
  };

  it('runs on version tags, reads only by default, and may write packages only in the image job', () => {
    expect(workflow.on.push.tags).toEqual(['v*.*.*']);
    expect(workflow.permissions).toEqual({ contents: 'read' });
    expect(image?.permissions).toEqual({ contents: 'read', packages: 'write' });
  });

  it('pins every action to a version', () => {
    const uses = Object.values(workflow.jobs)
      .flatMap((j) => j.steps.map((s) => s.uses))
      .filter((u) => u !== undefined);
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u, u).toMatch(/^[\w.-]+\/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
  });

  it('builds both variants for amd64 and arm64 from docker/Dockerfile, with build args the Dockerfile declares', () => {
    expect(image?.strategy?.matrix.include.map((v) => [v.variant, v['with-local-engine'], v.suffix])).toEqual([
      ['full', 'true', ''],
      ['slim', 'false', '-slim'],
    ]);
    for (const action of [
      'docker/setup-qemu-action',
      'docker/setup-buildx-action',
      'docker/login-action',
      'docker/metadata-action',
    ]) {
      expect(() => step(action)).not.toThrow();
    }
    const build = step('docker/build-push-action').with ?? {};
    expect(build.context).toBe('.');
    expect(existsSync(path.join(root, String(build.file)))).toBe(true);
    expect(String(build.platforms).split(',')).toEqual(['linux/amd64', 'linux/arm64']);
    const args = String(build['build-args'])
      .trim()
      .split('\n')
      .map((a) => a.split('=')[0]);
    expect(args).toEqual(['WITH_LOCAL_ENGINE']);
    for (const a of args) expect(dockerArgs.has(a), `ARG ${a} in docker/Dockerfile`).toBe(true);
    expect(build.push).toBe("${{ github.event_name == 'push' }}");
  });

  it('logs in to ghcr.io with the job token only when it pushes, and tags per variant', () => {
    const login = step('docker/login-action');
    expect(login.if).toBe("github.event_name == 'push'");
    expect(login.with).toEqual({
      registry: 'ghcr.io',
      username: '${{ github.actor }}',
      password: '${{ secrets.GITHUB_TOKEN }}',
    });
    const meta = step('docker/metadata-action').with ?? {};
    expect(meta.images).toBe('ghcr.io/${{ github.repository }}');
    expect(String(meta.flavor)).toContain('suffix=${{ matrix.suffix }},onlatest=true');
  });

  it('lints the Dockerfile before building', () => {
    expect(image?.needs).toBe('lint');
    const lint = workflow.jobs.lint?.steps.find((s) => s.uses?.startsWith('hadolint/hadolint-action@'));
    expect(lint?.with?.dockerfile).toBe('docker/Dockerfile');
    expect(existsSync(path.join(root, String(lint?.with?.dockerfile)))).toBe(true);
  });
});

describe('docker/Dockerfile', () => {
  it('has a stage for each value of WITH_LOCAL_ENGINE, the only two the runtime FROM can pick', () => {
    expect(dockerfile).toMatch(/^ARG WITH_LOCAL_ENGINE=true$/m);
    expect(dockerfile).toMatch(/^FROM engine-\$\{WITH_LOCAL_ENGINE\} AS runtime$/m);
    expect([...dockerfile.matchAll(/^FROM \S+ AS (engine-\S+)$/gm)].map((m) => m[1])).toEqual([
      'engine-true',
      'engine-false',
    ]);
  });

  it('copies and mounts only paths that exist and that .dockerignore lets into the build context', () => {
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) =>
      (m[1] as string).split(' '),
    );
    const mounted = [...dockerfile.matchAll(/--mount=type=bind,source=([^,\s]+)/g)].map((m) => m[1] as string);
    expect(mounted).toEqual(['docker/prune-node-modules.sh']);
    const sources = [...copied, ...mounted];
    expect(sources).toContain('src');
    for (const source of sources) {
      if (source.includes('*')) continue;
      expect(existsSync(path.join(root, source)), `${source} exists`).toBe(true);
      expect(inBuildContext(source), `${source} is in the build context`).toBe(true);
    }
  });
});

describe('docker/compose.yaml', () => {
  interface Service {
    build?: { context: string; dockerfile: string; args?: Record<string, string> };
    env_file?: Array<{ path: string; required: boolean }>;
    environment?: Record<string, string | null>;
    ports?: string[];
  }
  const compose = parse(read('docker/compose.yaml'), { merge: true }) as { services: Record<string, Service> };
  const ours = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

  it("builds the api and the worker (and the cluster profile's) from the Dockerfile with args it declares", () => {
    expect(ours.map(([name]) => name)).toEqual(['api', 'worker', 'cluster-api', 'cluster-worker']);
    for (const [, s] of ours) {
      const context = path.resolve(root, 'docker', s.build?.context ?? '');
      expect(existsSync(path.join(context, s.build?.dockerfile ?? ''))).toBe(true);
      for (const arg of Object.keys(s.build?.args ?? {})) expect(dockerArgs.has(arg), arg).toBe(true);
    }
  });

  it('reads the repository-root .env (optional) and sets in `environment` only real settings, none left empty', () => {
    const settings = Object.keys(envSchema.shape);
    for (const [name, s] of ours) {
      expect(s.env_file, name).toEqual([{ path: '../.env', required: false }]);
      expect(path.resolve(root, 'docker', s.env_file?.[0]?.path ?? '')).toBe(path.join(root, '.env'));
      // A name without a value would override the env file's value with the shell's (or with nothing).
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        expect(settings, `${name}: ${key}`).toContain(key);
        expect(value, `${name}: ${key}`).not.toBeNull();
      }
    }
    expect(existsSync(path.join(root, '.env.example'))).toBe(true);
  });

  it('publishes every port on 127.0.0.1 only: the containers serve whoever reaches them without API_KEYS', () => {
    // No client comes from a container's own loopback, so OPEN_MODE_CLIENTS=loopback would refuse every one.
    for (const [name, s] of ours) expect(s.environment?.OPEN_MODE_CLIENTS, name).toBe('any');
    const published = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, p]));
    expect(published.map(([name]) => name)).toEqual(['api', 'proxy', 'prometheus', 'grafana']);
    for (const [name, port] of published) expect(port, name).toMatch(/^127\.0\.0\.1:/);
  });
});

describe('docker/prune-node-modules.sh', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const kept = [
    'pkg/package.json',
    'pkg/LICENSE',
    'pkg/index.js',
    'pkg/index.mjs',
    'pkg/index.cjs',
    'pkg/lib/test/runtime.js',
    'yaml/dist/doc/Document.js',
    '@scope/pkg/dist/index.js',
    '@scope/pkg/lib/examples/code.js',
    'a/node_modules/b/test/x.js',
  ];
  const removed = [
    'pkg/README.md',
    'pkg/index.d.ts',
    'pkg/index.d.mts',
    'pkg/index.d.cts',
    'pkg/index.js.map',
    'pkg/src/index.ts',
    'pkg/tsconfig.tsbuildinfo',
    'pkg/test/unit.js',
    'pkg/tests/a.js',
    'pkg/__tests__/a.js',
    'pkg/coverage/lcov.info',
    'pkg/benchmark/a.js',
    'pkg/benchmarks/a.js',
    'pkg/bench/a.js',
    'pkg/example/a.js',
    'pkg/examples/a.js',
    'pkg/.github/workflow.yml',
    '@scope/pkg/test/a.js',
    '@scope/pkg/CHANGELOG.md',
  ];

  it('removes declarations, sources, maps, markdown and root-level test folders, and keeps the code', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'prune-'));
    const modules = path.join(dir, 'node_modules');
    for (const file of [...kept, ...removed]) {
      mkdirSync(path.dirname(path.join(modules, file)), { recursive: true });
      writeFileSync(path.join(modules, file), 'x');
    }
    await run('sh', [path.join(root, 'docker/prune-node-modules.sh'), modules]);
    expect(kept.filter((f) => !existsSync(path.join(modules, f)))).toEqual([]);
    expect(removed.filter((f) => existsSync(path.join(modules, f)))).toEqual([]);
  });

  it('refuses a directory that does not exist', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'prune-'));
    const missing = path.join(dir, 'node_modules');
    const failure = await run('sh', [path.join(root, 'docker/prune-node-modules.sh'), missing]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toBe(`prune-node-modules: ${missing} is not a directory\n`);
  });
});

describe('scripts/env-example.ts', () => {
  it('prints the committed .env.example, as docs/docker.md and the file itself say to run it', async () => {
    const { stdout } = await run(process.execPath, ['--experimental-strip-types', 'scripts/env-example.ts'], {
      cwd: root,
    });
    expect(stdout).toBe(read('.env.example'));
  });
});
