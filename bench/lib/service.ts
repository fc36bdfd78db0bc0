import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOOPBACK, type Place } from '../../test/support/place.ts';
import { cleanEnv, readStatusKb } from './proc.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Services alive right now, so an interrupted harness can stop them (bench-only process state). */
const live = new Set<ChildProcess>();

/** SIGKILLs every service this process started and has not stopped yet (their ffmpeg children die with their pipes). */
export function killLiveServices(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

export interface ServiceHandle {
  url: string;
  pid: number;
  dataDir: string;
  logFile: string;
  /** VmHWM of the service process (its own peak RSS since start), KiB. */
  hwmKb(): number | null;
  /** The pino JSON lines logged so far. */
  logLines(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface StartServiceOptions {
  /** Service configuration (env names of src/config.ts); HOST, PORT and DATA_DIR are set here. */
  env: Record<string, string>;
  /** Parent of the data dir and the log file. */
  workDir: string;
  name: string;
  /** Keep the data dir after stop (for a look after a failed run). */
  keep?: boolean;
  /** An existing data dir (a restart on the same jobs); the caller removes it. @default a new temp dir */
  dataDir?: string;
  /** The entry point, relative to the repository. @default 'src/server.ts' */
  entry?: string;
  /** Where it runs and listens: another host is a network namespace (test/support/netns.ts). @default this machine */
  place?: Place;
}

/** Parses a pino log file; lines that are not JSON (a crash trace) are skipped. */
export function readLogLines(file: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut by a kill.
    }
  }
  return out;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '(no log)';
  }
}

/** A port free right now on 127.0.0.1 (the OS picks it; a race with another process is possible but unlikely). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The real service as a child process (`node src/server.ts`, or the built dist/server.js), stdout and stderr to a log file so a busy
 * harness never back-pressures its logging. The port is chosen here rather than PORT=0 plus the
 * "Server listening at" line, which LOG_LEVEL=warn does not print; /health/live tells when it is up.
 */
export async function startService(opts: StartServiceOptions): Promise<ServiceHandle> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(opts.workDir, `${opts.name}-data-`));
  const logFile = path.join(opts.workDir, `${opts.name}-${path.basename(dataDir).slice(-6)}-${Date.now()}.log`);
  const place = opts.place ?? LOOPBACK;
  // A port free here is as good as any in a namespace of its own, where nothing else listens.
  const port = await freePort();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // `ip netns exec` execs node: the child's pid is the service's (VmHWM below reads the service).
    child = spawn(...place.wrap(process.execPath, [opts.entry ?? 'src/server.ts']), {
      cwd: REPO_ROOT,
      env: cleanEnv({ LOG_LEVEL: 'info', ...opts.env, HOST: place.host, PORT: String(port), DATA_DIR: dataDir }),
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('the service did not start');
  let exited = false;
  live.add(child);
  child.on('exit', () => {
    exited = true;
    live.delete(child);
  });

  const url = `http://${place.host}:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited)
      throw new Error(`the service exited before listening (exit ${child.exitCode}); log:\n${logTail(logFile)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not listen within 30 s; log:\n${logTail(logFile)}`);
    }
    const up = await fetch(`${url}/health/live`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    await sleep(25);
  }

  let stopping: Promise<void> | null = null;
  return {
    url,
    pid,
    dataDir,
    logFile,
    hwmKb: () => readStatusKb(pid, 'VmHWM'),
    logLines: () => readLogLines(logFile),
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
          if (!exited) await once(child, 'exit');
          clearTimeout(timer);
        }
        if (ownDir && !opts.keep) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** Log lines of one message, in order. */
export function logged(lines: Array<Record<string, unknown>>, msg: string): Array<Record<string, unknown>> {
  return lines.filter((l) => l.msg === msg);
}
