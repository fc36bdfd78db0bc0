import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../src/resources/data-dir-lock.ts';
import { startServer } from '../helper.ts';
import { until } from '../support/until.ts';

const LOCK_MODULE = path.resolve(import.meta.dirname, '../../src/resources/data-dir-lock.ts');

/** The state letter of /proc/<pid>/stat, or null when there is no such process. */
function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * A node process that takes the lock on dataDir and then idles, started by a shell that then becomes `sleep`
 * (exec) and never waits for it: once the node process is killed it stays a zombie for as long as the sleep
 * runs. Node itself reaps the children it spawns at once, so the lock taker must not be one.
 */
async function lockHolderUnderNonReapingParent(dataDir: string): Promise<{ parent: ChildProcess; holderPid: number }> {
  const script = `import(${JSON.stringify(LOCK_MODULE)}).then((m) => { m.lockDataDir(process.argv[1]); console.log('locked ' + process.pid); setInterval(() => {}, 60_000); })`;
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const parent = spawn('sh', ['-c', `${quote(process.execPath)} -e ${quote(script)} ${quote(dataDir)} & exec sleep 600`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const holderPid = await new Promise<number>((resolve, reject) => {
    createInterface({ input: parent.stdout! }).on('line', (line) => {
      const m = /^locked (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    parent.once('exit', () => reject(new Error('the shell exited before the lock was taken')));
  });
  return { parent, holderPid };
}

describe('the DATA_DIR lock', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  /** A live process that is not the lock's writer. */
  async function otherProcess(): Promise<{ pid: number }> {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const pid = child.pid!;
    await until(() => procState(pid) !== null, 'sleep to start');
    return { pid };
  }
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-lock-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  it('is taken over from an owner killed with SIGKILL and not yet reaped (a zombie)', async () => {
    const dataDir = await tempDir();
    const { parent, holderPid } = await lockHolderUnderNonReapingParent(dataDir);
    cleanups.push(() => {
      parent.kill('SIGKILL');
    });
    // The live holder keeps everyone else out.
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by process ${holderPid}`);
    expect(() => lockDataDir(dataDir, { shared: true })).toThrow(`single-process service ${holderPid}`);

    process.kill(holderPid, 'SIGKILL');
    await until(() => procState(holderPid) === 'Z', `process ${holderPid} to be a zombie`);
    // Still there for kill(pid, 0): the old check took it for alive.
    expect(() => process.kill(holderPid, 0)).not.toThrow();

    // A service starting on the DATA_DIR right after the kill takes the lock.
    const server = await startServer({ TRANSCRIBE_PROVIDER: 'local' }, dataDir);
    try {
      expect(readFileSync(path.join(dataDir, 'service.lock'), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+$`));
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
      expect(procState(holderPid)).toBe('Z');
    } finally {
      await server.close();
    }
  });

  it('is taken over when the recorded pid now belongs to another process (a recycled pid)', async () => {
    const dataDir = await tempDir();
    const other = await otherProcess();
    // The pid runs, but it is not the process that wrote the lock: that one started at another time.
    writeFileSync(path.join(dataDir, 'service.lock'), `${other.pid} 1`);
    const lock = lockDataDir(dataDir);
    lock.release();
  });

  it('refuses while the recorded owner runs, by pid and start time, and by pid alone for an older lock file', async () => {
    const dataDir = await tempDir();
    const other = await otherProcess();
    const stat = readFileSync(`/proc/${other.pid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(path.join(dataDir, 'service.lock'), `${other.pid} ${startTime}`);
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by process ${other.pid}`);
    writeFileSync(path.join(dataDir, 'service.lock'), String(other.pid));
    expect(() => lockDataDir(dataDir)).toThrow(`is in use by process ${other.pid}`);
  });
});
