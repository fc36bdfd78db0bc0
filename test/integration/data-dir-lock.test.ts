import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../src/resources/data-dir-lock.ts';
import { startServer } from '../helper.ts';
import { until } from '../support/until.ts';

const LOCK_MODULE = path.resolve(import.meta.dirname, '../../src/resources/data-dir-lock.ts');

/** What a lock taken by this process holds: its pid, start time and host. */
function selfRecord(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return `${process.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]} ${os.hostname()}`;
}

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
  const parent = spawn(
    'sh',
    ['-c', `${quote(process.execPath)} -e ${quote(script)} ${quote(dataDir)} & exec sleep 600`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const holderPid = await new Promise<number>((resolve, reject) => {
    createInterface({ input: parent.stdout! }).on('line', (line) => {
      const m = /^locked (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    parent.once('exit', () => reject(new Error('the shell exited before the lock was taken')));
  });
  return { parent, holderPid };
}

interface Contender {
  child: ChildProcess;
  pid: number;
  /** The next line the process prints: `LOCKED <pid>` or `REFUSED <pid> <message>`. */
  next(): Promise<string>;
}

/**
 * A node process that calls lockDataDir(dataDir) each time it reads `go` on stdin and prints what came of it. The
 * processes start once and race in every round: each round's `go` reaches them all at the same moment, after
 * their start-up.
 */
async function contender(dataDir: string): Promise<Contender> {
  const script =
    `import(${JSON.stringify(LOCK_MODULE)}).then((m) => {` +
    `  require('node:readline').createInterface({ input: process.stdin }).on('line', () => {` +
    `    try { m.lockDataDir(process.argv[1]); console.log('LOCKED ' + process.pid); }` +
    `    catch (e) { console.log('REFUSED ' + process.pid + ' ' + e.message); }` +
    `  });` +
    `  console.log('READY ' + process.pid);` +
    `})`;
  const child = spawn(process.execPath, ['-e', script, dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const queued: string[] = [];
  const waiting: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w.resolve(line);
    else queued.push(line);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
    for (const w of waiting.splice(0)) w.reject(new Error(`contender ${child.pid} exited`));
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const line = queued.shift();
      if (line !== undefined) resolve(line);
      else if (exited) reject(new Error(`contender ${child.pid} exited`));
      else waiting.push({ resolve, reject });
    });
  const ready = await next();
  expect(ready).toMatch(/^READY \d+$/);
  return { child, pid: child.pid!, next };
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
      expect(readFileSync(path.join(dataDir, 'service.lock'), 'utf8')).toBe(selfRecord());
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
      expect(procState(holderPid)).toBe('Z');
    } finally {
      await server.close();
    }
  });

  it('is taken over by exactly one of many processes starting at once on a stale lock, round after round', async () => {
    const dataDir = await tempDir();
    const contenders = await Promise.all(Array.from({ length: 8 }, () => contender(dataDir)));
    cleanups.push(() => {
      for (const c of contenders) c.child.kill('SIGKILL');
    });
    const lockFile = path.join(dataDir, 'service.lock');
    for (let round = 0; round < 25; round++) {
      // Left by a process that is gone; the last round's holder still runs, but its lock is replaced.
      writeFileSync(lockFile, '999999 1');
      for (const c of contenders) c.child.stdin!.write('go\n');
      const answers = await Promise.all(contenders.map((c) => c.next()));
      const holders = answers.filter((a) => a.startsWith('LOCKED '));
      expect(holders, `round ${round}: ${answers.join(' | ')}`).toHaveLength(1);
      const holder = Number(holders[0]!.split(' ')[1]);
      for (const a of answers.filter((x) => !x.startsWith('LOCKED ')))
        expect(a, `round ${round}`).toMatch(`is in use by process ${holder};`);
      expect(readFileSync(lockFile, 'utf8')).toMatch(new RegExp(`^${holder} \\d+ ${os.hostname()}$`));
    }
    // Nothing of the takeovers is left beside the lock.
    expect(readdirSync(dataDir).sort()).toEqual(['service.lock']);
  });

  it('removes a takeover guard left by a process that died inside it, once it is old enough', async () => {
    const dataDir = await tempDir();
    writeFileSync(path.join(dataDir, 'service.lock'), '999999 1');
    const guard = path.join(dataDir, 'service.lock.takeover');
    mkdirSync(guard);
    const old = new Date(Date.now() - 60_000);
    utimesSync(guard, old, old);
    const lock = lockDataDir(dataDir);
    expect(readFileSync(path.join(dataDir, 'service.lock'), 'utf8')).toBe(selfRecord());
    lock.release();
  });

  it('is taken over when the recorded pid now belongs to another process (a recycled pid)', async () => {
    const dataDir = await tempDir();
    const other = await otherProcess();
    // The pid runs, but it is not the process that wrote the lock: that one started at another time.
    writeFileSync(path.join(dataDir, 'service.lock'), `${other.pid} 1`);
    const lock = lockDataDir(dataDir);
    expect(readFileSync(path.join(dataDir, 'service.lock'), 'utf8')).toBe(selfRecord());
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

  it("never judges another host's lock by its pid: refused while rewritten lately, taken over once a minute old", async () => {
    const dataDir = await tempDir();
    const file = path.join(dataDir, 'service.lock');
    const other = await otherProcess();
    // On another host (a shared volume), a pid alive here, one that is not, and this very process's pid.
    for (const pid of [other.pid, 2 ** 22 + 1, process.pid]) {
      writeFileSync(file, `${pid} 12345 host-b.example`);
      expect(() => lockDataDir(dataDir)).toThrow(`is in use by process ${pid} on host host-b.example`);
      expect(() => lockDataDir(dataDir, { shared: true })).toThrow(
        `single-process service ${pid} on host host-b.example`,
      );
    }
    // Not rewritten for over a minute: that host is gone, whatever its pid is here.
    const old = new Date(Date.now() - 61_000);
    utimesSync(file, old, old);
    lockDataDir(dataDir, { shared: true }).release();
    const lock = lockDataDir(dataDir);
    expect(readFileSync(file, 'utf8')).toBe(selfRecord());
    lock.release();
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('rewrites the lock it holds (its heartbeat) until it is released', async () => {
    const dataDir = await tempDir();
    const file = path.join(dataDir, 'service.lock');
    const lock = lockDataDir(dataDir, { heartbeatMs: 20 });
    const old = new Date(Date.now() - 61_000);
    utimesSync(file, old, old);
    await until(() => statSync(file).mtimeMs > old.getTime() + 30_000, 'the lock to be rewritten');
    expect(readFileSync(file, 'utf8')).toBe(selfRecord());
    lock.release();
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
