import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/** What a lock file names: a pid, and on Linux that process's start time, so a recycled pid is not taken for it. */
interface Owner {
  pid: number;
  /** Clock ticks after boot (field 22 of /proc/<pid>/stat); null where there is no /proc or an older file. */
  startTime: string | null;
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
  const [pidText = '', startTime] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, startTime: startTime !== undefined && /^\d+$/.test(startTime) ? startTime : null };
}

/** The pid and start time of this process, as the lock file stores them. */
function selfRecord(): string {
  const stat = procStat(process.pid);
  return stat ? `${process.pid} ${stat.startTime}` : String(process.pid);
}

/** The owner of the lock file, when it is another process that still runs. */
function liveOtherOwner(file: string): Owner | null {
  const owner = readOwner(file);
  return owner !== null && owner.pid !== process.pid && ownerAlive(owner) ? owner : null;
}

/**
 * One process owns a DATA_DIR: a second one would sweep the first one's uploads as orphans and run its jobs twice.
 * The lock file holds the owner's pid and start time; a lock left by a dead process (kill -9, reaped or not) or
 * naming a pid that now belongs to another process is taken over.
 */
export function lockDataDir(dataDir: string, opts: { shared?: boolean } = {}): { release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'service.lock');
  if (opts.shared) {
    // Scale-out processes share the DATA_DIR by design (BullMQ hands each job to one worker); they only refuse to
    // start beside a live single-process service, which would run the same jobs on its own.
    const owner = liveOtherOwner(file);
    if (owner) throw new Error(`DATA_DIR ${dataDir} is in use by the single-process service ${owner.pid}`);
    return { release: () => undefined };
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, selfRecord());
      closeSync(fd);
      return { release: () => rmSync(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = liveOtherOwner(file);
      if (owner) {
        throw new Error(`DATA_DIR ${dataDir} is in use by process ${owner.pid}; run one service per DATA_DIR`, { cause: err });
      }
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock DATA_DIR ${dataDir}`);
}
