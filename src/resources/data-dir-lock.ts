import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * A takeover guard older than this was left by a process that died inside it (the guarded steps take
 * microseconds): it is removed.
 */
const GUARD_STALE_MS = 10_000;
/** How long lockDataDir waits for other processes' takeovers before it gives up. */
const LOCK_WAIT_MS = 2 * GUARD_STALE_MS;
const GUARD_POLL_MS = 10;
/**
 * The owner rewrites its lock file this often, so that a process on another host (a DATA_DIR on NFS or EFS), to
 * which its pid means nothing, can tell it lives from the file's age.
 */
const HEARTBEAT_MS = 10_000;
/** Another host's lock not rewritten for this long (by the file server's clock) was left by a host that is gone. */
const HEARTBEAT_STALE_MS = 6 * HEARTBEAT_MS;

/**
 * What a lock file names: a pid, on Linux that process's start time, so a recycled pid is not taken for it, and
 * the host it runs on.
 */
interface Owner {
  pid: number;
  /** Clock ticks after boot (field 22 of /proc/<pid>/stat); null where there is no /proc or an older file. */
  startTime: string | null;
  /** Null in a lock file written before hosts were recorded: taken as this host's, as it was then. */
  host: string | null;
}

interface ProcStat {
  state: string;
  startTime: string;
}

/**
 * /proc/<pid>/stat's state and start time, null when there is no such process (or no /proc). The command name
 * (field 2) is in parentheses and may itself hold spaces and parentheses: the fields are read after the last ')'.
 */
function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, starttime field 22.
  const state = fields[0];
  const startTime = fields[19];
  return state && startTime ? { state, startTime } : null;
}

const hasProc = (): boolean => procStat(process.pid) !== null;

const isCode = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException).code === code;

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the lock's owner still runs. A zombie (killed, not yet reaped by its parent) has released everything
 * and runs no code: it is dead, though kill(pid, 0) still finds it. A live process whose start time is not the
 * recorded one got the pid after the owner died.
 */
function ownerAlive(owner: Owner): boolean {
  if (!hasProc()) return signalable(owner.pid);
  const stat = procStat(owner.pid);
  if (stat === null) return false;
  // Z zombie, X dead (seen only in the moment before the entry goes).
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return owner.startTime === null || owner.startTime === stat.startTime;
}

function readOwner(file: string): Owner | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const [pidText = '', startTime, host] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, startTime: startTime !== undefined && /^\d+$/.test(startTime) ? startTime : null, host: host ?? null };
}

/** The pid, start time ('-' where unknown) and host of this process, as the lock file stores them. */
function selfRecord(): string {
  return `${process.pid} ${procStat(process.pid)?.startTime ?? '-'} ${os.hostname()}`;
}

const onThisHost = (owner: Owner): boolean => owner.host === null || owner.host === os.hostname();

/**
 * Whether another host's lock was rewritten lately. Both times are the file server's: the lock's mtime, and that
 * of `probe`, a file this process has just written beside it, so the hosts' clocks need not agree.
 */
function heartbeatFresh(file: string, probe: string): boolean {
  try {
    return statSync(probe).mtimeMs - statSync(file).mtimeMs < HEARTBEAT_STALE_MS;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * The owner of the lock file, when it is another process that still runs: on this host by its pid, on another
 * host (whose pids mean nothing here) by the lock's heartbeat.
 */
function liveOtherOwner(file: string, probe: string): Owner | null {
  const owner = readOwner(file);
  if (owner === null) return null;
  if (!onThisHost(owner)) return heartbeatFresh(file, probe) ? owner : null;
  return owner.pid !== process.pid && ownerAlive(owner) ? owner : null;
}

const describeOwner = (owner: Owner): string => `${owner.pid}${onThisHost(owner) ? '' : ` on host ${owner.host}`}`;

/** Rewrites the lock in place every HEARTBEAT_MS while it is still this process's (no other took it over). */
function beat(file: string, record: string, everyMs: number): () => void {
  const timer = setInterval(() => {
    try {
      if (readFileSync(file, 'utf8') === record) writeFileSync(file, record, { flag: 'r+' });
    } catch {
      // Gone or unreadable for a moment (a network volume): the next beat tries again.
    }
  }, everyMs);
  // The beat never keeps the process alive on its own.
  timer.unref();
  return () => clearInterval(timer);
}

/** Blocks the thread for `ms`: the lock is taken at start, before anything else runs. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Removes a takeover guard left by a process that died holding it. */
function removeStaleGuard(guard: string): void {
  try {
    if (Date.now() - statSync(guard).mtimeMs > GUARD_STALE_MS) rmSync(guard, { recursive: true, force: true });
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
}

/**
 * One process owns a DATA_DIR: a second one would sweep the first one's uploads as orphans and run its jobs twice.
 * The lock file holds the owner's pid, start time and host; a lock left by a dead process (kill -9, reaped or not)
 * or naming a pid that now belongs to another process is taken over. A DATA_DIR on a network volume may be
 * mounted on several hosts: another host's lock is judged by its heartbeat (the owner rewrites it every 10 s),
 * never by its pid, and taken over once it has not been rewritten for a minute.
 *
 * The lock file never exists without its content: it is written whole under a temporary name, then linked to
 * the lock's name (EEXIST when it is taken). Taking over a stale lock happens inside a guard (an atomic mkdir):
 * the owner is read again inside it and the stale file replaced by rename, so of processes starting together on
 * a stale lock exactly one takes it, and none removes a lock another has just taken.
 */
export function lockDataDir(
  dataDir: string,
  opts: { shared?: boolean; heartbeatMs?: number } = {},
): { release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'service.lock');
  // Written whole under a name of its own: the record to link as the lock, and the clock probe of heartbeatFresh.
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const record = selfRecord();
  writeFileSync(temp, record, { flag: 'wx' });
  if (opts.shared) {
    try {
      // Scale-out processes share the DATA_DIR by design (BullMQ hands each job to one worker), on one host or on
      // a network volume across hosts; they hold no lock and only refuse to start beside a live single-process
      // service, which would run the same jobs on its own.
      const owner = liveOtherOwner(file, temp);
      if (owner) throw new Error(`DATA_DIR ${dataDir} is in use by the single-process service ${describeOwner(owner)}`);
      return { release: () => undefined };
    } finally {
      rmSync(temp, { force: true });
    }
  }
  const guard = `${file}.takeover`;
  const inUse = (owner: Owner) =>
    new Error(`DATA_DIR ${dataDir} is in use by process ${describeOwner(owner)}; run one service per DATA_DIR`);
  const taken = () => {
    const stop = beat(file, record, opts.heartbeatMs ?? HEARTBEAT_MS);
    return {
      release: () => {
        stop();
        rmSync(file, { force: true });
      },
    };
  };

  /** True when the lock was stale and is now ours; false when another process is taking it over right now. */
  const takeOver = (): boolean => {
    try {
      mkdirSync(guard);
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw err;
      removeStaleGuard(guard);
      return false;
    }
    try {
      // Inside the guard: the owner read before may have been replaced by a process that took over meanwhile.
      const owner = liveOtherOwner(file, temp);
      if (owner) throw inUse(owner);
      renameSync(temp, file);
      return true;
    } finally {
      rmSync(guard, { recursive: true, force: true });
    }
  };

  try {
    const deadline = performance.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        linkSync(temp, file);
        return taken();
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err;
      }
      const owner = liveOtherOwner(file, temp);
      if (owner) throw inUse(owner);
      if (takeOver()) return taken();
      if (performance.now() >= deadline)
        throw new Error(`could not lock DATA_DIR ${dataDir}: another process kept ${guard} for ${LOCK_WAIT_MS} ms`);
      sleepSync(GUARD_POLL_MS);
    }
  } finally {
    rmSync(temp, { force: true });
  }
}
