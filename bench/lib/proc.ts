import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pollUntilStopped } from './poll.ts';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak RSS of the process itself (VmHWM read just before it was reaped), in KiB; null when it exited too fast to read. */
  hwmKb: number | null;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each stdout line and the ms since spawn. */
  onStdoutLine?: (line: string, ms: number) => void;
  /** Called once with the child's pid, e.g. to start an RSS sampler on it. */
  onSpawn?: (pid: number) => void;
}

/** Spawns a command, collects its output, times it from spawn to exit. Never rejects on a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let hwmKb: number | null = null;
    // VmHWM disappears with the process: sample it while it lives, the last value is the peak.
    const hwmTimer = setInterval(() => {
      if (child.pid !== undefined) hwmKb = readStatusKb(child.pid, 'VmHWM') ?? hwmKb;
    }, 50);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!opts.onStdoutLine) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      const ms = performance.now() - started;
      for (const line of lines) opts.onStdoutLine(line, ms);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
    });
    child.on('spawn', () => {
      if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    });
    child.on('error', (err) => {
      clearInterval(hwmTimer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(hwmTimer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, hwmKb });
    });
  });
}

/** Like run, but throws with the stderr tail when the command fails. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.slice(-2000)}`);
  return r;
}

/** A `Vm*` line of /proc/<pid>/status in KiB, or null when the process is gone. */
export function readStatusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * CPU time a process has used, its own and that of the children it waited for (ffmpeg, ffprobe), in ms, from
 * /proc/<pid>/stat (utime, stime, cutime, cstime in clock ticks of 10 ms); null when it cannot be read. Unlike
 * wall time, it hardly moves with what else the machine runs.
 */
export function readCpuMs(pid: number): { ownMs: number; childrenMs: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const tick = 10;
    return { ownMs: ((f[11] ?? 0) + (f[12] ?? 0)) * tick, childrenMs: ((f[13] ?? 0) + (f[14] ?? 0)) * tick };
  } catch {
    return null;
  }
}

/** Every descendant pid of a process (children of all its threads, recursively). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
          out.push(k);
          stack.push(k);
        }
      } catch {
        // The thread ended between readdir and read.
      }
    }
  }
  return out;
}

export interface RssPeaks {
  /** Highest VmRSS of the process alone seen by polling, KiB. */
  selfKb: number;
  /** Highest sum of VmRSS over the process and its descendants (ffmpeg, ffprobe), KiB. */
  treeKb: number;
  samples: number;
}

/**
 * Polls the RSS of a process and of its process tree. Polling misses spikes shorter than the interval;
 * VmHWM (readStatusKb) is the exact peak of the process itself, this adds the children it spawns.
 */
export function sampleRss(pid: number, intervalMs = 100): { stop(): RssPeaks } {
  const peaks: RssPeaks = { selfKb: 0, treeKb: 0, samples: 0 };
  const tick = (): void => {
    const self = readStatusKb(pid, 'VmRSS');
    if (self === null) return;
    let tree = self;
    for (const d of descendants(pid)) tree += readStatusKb(d, 'VmRSS') ?? 0;
    peaks.selfKb = Math.max(peaks.selfKb, self);
    peaks.treeKb = Math.max(peaks.treeKb, tree);
    peaks.samples += 1;
  };
  return pollUntilStopped(intervalMs, tick, () => ({ ...peaks }));
}

/** A clean environment for children: nothing from the caller's shell (no stray keys or base URLs) but PATH and locale. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}
