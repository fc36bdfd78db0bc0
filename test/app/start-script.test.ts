import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { until } from '../support/until.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE_BIN = path.dirname(process.execPath);
/** PATH without this test's Node 24: what a new shell on the machine has. */
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const majorOf = (nodePath: string): number =>
  Number(spawnSync(nodePath, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim() || 0);

describe('scripts/start.sh', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it(
    'stops the service it started on SIGTERM: no node process is left holding the port',
    { timeout: 300_000 },
    async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-start-'));
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      const port = await freePort();
      const script = spawn('bash', [path.join(ROOT, 'scripts/start.sh'), '--no-demo'], {
        env: {
          PATH: `${NODE_BIN}:${SYSTEM_PATH}`,
          HOME: os.homedir(),
          PORT: String(port),
          HOST: '127.0.0.1',
          DATA_DIR: dataDir,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      script.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
      const exited = new Promise<number | null>((resolve) => script.once('exit', (code) => resolve(code)));
      let serverPid = 0;
      cleanups.push(() => {
        // Only when the test failed before the script stopped it.
        if (serverPid > 0 && existsSync(`/proc/${serverPid}`)) process.kill(serverPid, 'SIGKILL');
        if (script.exitCode === null) script.kill('SIGKILL');
      });

      // Setup and the build come first: minutes on a loaded machine.
      await until(async () => script.exitCode !== null || (await listening(port)), `the service to listen on ${port}`, {
        timeoutMs: 240_000,
        everyMs: 100,
      });
      expect(script.exitCode, stderr).toBeNull();
      // The service's own pid, from its DATA_DIR lock.
      serverPid = Number(readFileSync(path.join(dataDir, 'service.lock'), 'utf8').split(' ')[0]);
      expect(readFileSync(`/proc/${serverPid}/cmdline`, 'utf8')).toContain('dist/server.js');
      expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);

      script.kill('SIGTERM');
      // The script waits for the service's graceful exit and passes its status on.
      expect(await exited).toBe(0);
      expect(existsSync(`/proc/${serverPid}`)).toBe(false);
      expect(await listening(port)).toBe(false);
    },
  );
});

describe('npm start (scripts/node.sh) in a new shell', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A copy of the project's start command and launcher around a dist/server.js that prints the Node running it. */
  async function project(opts: { tools: boolean }): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-launch-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
    await writeFile(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'launch-test', private: true, scripts: { start: pkg.scripts.start } }),
    );
    await mkdir(path.join(dir, 'scripts'));
    await copyFile(path.join(ROOT, 'scripts/node.sh'), path.join(dir, 'scripts/node.sh'));
    await mkdir(path.join(dir, 'dist'));
    await writeFile(path.join(dir, 'dist/server.js'), 'console.log(`node ${process.versions.node}`);\n');
    if (opts.tools) {
      // Where scripts/ensure-env.sh installs Node 24; here the Node running this test stands in for it.
      const bin = path.join(dir, '.tools/node/node_modules/node/bin');
      await mkdir(bin, { recursive: true });
      await symlink(process.execPath, path.join(bin, 'node'));
    }
    return dir;
  }

  const npmStart = (cwd: string, pathEnv: string) =>
    spawnSync('npm', ['start', '--silent'], {
      cwd,
      env: { PATH: pathEnv, HOME: os.homedir() },
      encoding: 'utf8',
      timeout: 60_000,
    });

  const systemNode = '/usr/bin/node';
  const oldSystemNode = existsSync(systemNode) && majorOf(systemNode) < 22;

  it.runIf(oldSystemNode)('runs the service on .tools/node when the system Node is older than 22', async () => {
    const run = npmStart(await project({ tools: true }), SYSTEM_PATH);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(`node ${process.versions.node}`);
  });

  it.runIf(oldSystemNode)(
    'says what to do, instead of crashing on node:sqlite, when there is no Node 22 at all',
    async () => {
      const run = npmStart(await project({ tools: false }), SYSTEM_PATH);
      expect(run.status).not.toBe(0);
      expect(run.stdout).not.toContain('node ');
      expect(run.stderr).toContain('chunkscribe needs Node 22 or newer; the node on PATH is v');
      expect(run.stderr).toContain('Run ./scripts/start.sh once');
    },
  );

  it('uses the node on PATH when it is new enough', async () => {
    const run = npmStart(await project({ tools: false }), `${NODE_BIN}:${SYSTEM_PATH}`);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(`node ${process.versions.node}`);
  });
});
