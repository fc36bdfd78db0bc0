import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

/** The machine's processes, behind an adapter so the decision can be tested with made-up tables. */
export interface ProcessTable {
  list(): Promise<ProcessInfo[]>;
  kill(pid: number): void;
}

/** Parses /proc/<pid>/stat: the parent pid follows the state, after the command name in parentheses. */
export function parentPid(stat: string): number | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** Linux /proc; elsewhere an empty table (the sweep then does nothing). */
export const procfsTable: ProcessTable = {
  async list() {
    const names = await readdir('/proc').catch(() => [] as string[]);
    const out: ProcessInfo[] = [];
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      // A process may exit between the listing and the reads: it is simply skipped.
      const [cmdline, stat] = await Promise.all([
        readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => ''),
        readFile(`/proc/${name}/stat`, 'utf8').catch(() => ''),
      ]);
      const ppid = parentPid(stat);
      if (cmdline === '' || ppid === null) continue;
      out.push({ pid: Number(name), ppid, argv: cmdline.split('\0').filter((a) => a !== '') });
    }
    return out;
  },
  kill(pid) {
    process.kill(pid, 'SIGKILL');
  },
};

export interface StraySweepOptions {
  /** DATA_DIR/jobs: only processes working on files under it are candidates. */
  jobsRoot: string;
  logger: Logger;
  table?: ProcessTable;
  /** @default process.pid */
  selfPid?: number;
  /** Executables the service runs on job files. @default ffmpeg, ffprobe, pocketsphinx_continuous */
  executables?: readonly string[];
}

const EXECUTABLES = ['ffmpeg', 'ffprobe', 'pocketsphinx_continuous'];

/** Pure: the processes a dead owner of this DATA_DIR left running on its job files. */
export function strayProcesses(
  processes: ProcessInfo[],
  jobsRoot: string,
  selfPid: number,
  executables: readonly string[],
): ProcessInfo[] {
  const prefix = jobsRoot.endsWith(path.sep) ? jobsRoot : jobsRoot + path.sep;
  return processes.filter(
    (p) =>
      p.pid !== selfPid &&
      p.ppid !== selfPid &&
      executables.includes(path.basename(p.argv[0] ?? '')) &&
      p.argv.some((a) => a.startsWith(prefix)),
  );
}

/**
 * After kill -9 the service's ffmpeg lives on, re-parented to init; one the slicer had paused (SIGSTOP, for
 * back-pressure) stays stopped forever, holding the deleted upload's disk space and writing into the chunk
 * directory the next process reuses. The DATA_DIR lock makes this process the only rightful owner, so every
 * such process is a leftover: SIGKILL (which also ends a stopped process). Returns the pids killed.
 */
export async function killStrayProcesses(options: StraySweepOptions): Promise<number[]> {
  const table = options.table ?? procfsTable;
  const strays = strayProcesses(
    await table.list(),
    options.jobsRoot,
    options.selfPid ?? process.pid,
    options.executables ?? EXECUTABLES,
  );
  const killed: number[] = [];
  for (const p of strays) {
    try {
      table.kill(p.pid);
      killed.push(p.pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH')
        options.logger.warn({ pid: p.pid, err }, 'could not end a stray process');
    }
  }
  // The next steps delete and rewrite the files these processes hold: wait until they are really gone.
  for (let i = 0; i < 40 && killed.length > 0; i++) {
    const alive = new Set((await table.list()).map((p) => p.pid));
    if (!killed.some((pid) => alive.has(pid))) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (killed.length > 0) {
    options.logger.warn(
      { pids: killed, commands: strays.map((p) => path.basename(p.argv[0] ?? '')) },
      'ended processes a previous service left running on job files',
    );
  }
  return killed;
}
