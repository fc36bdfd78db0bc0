import { spawn } from 'node:child_process';
import os from 'node:os';
import { AppError } from '../errors.ts';
import { lineSplitter } from './line-splitter.ts';

/** How much nicer than the service a run at low priority is: ~10 % of a core when it competes with the service's (CFS weights). */
export const LOW_PRIORITY = 10;
/** The lowest priority there is (the highest nice value). */
const NICEST = 19;

export interface RunOptions {
  /** Wall-clock limit; the process gets SIGKILL when it is reached. */
  timeoutS: number;
  signal?: AbortSignal | undefined;
  /** Past this many stdout bytes the process is killed and `stdoutOverflow` is set. @default 1 MiB */
  maxStdoutBytes?: number;
  /** Only the last this many stderr bytes are kept (the error lines are at the end). @default 64 KiB */
  stderrTailBytes?: number;
  /** Called for every complete stderr line, so long outputs can be parsed without keeping them. */
  onStderrLine?: (line: string) => void;
  /**
   * Called for every complete stdout line (e.g. `-progress pipe:1`). stdout is then streamed, not
   * kept, so `maxStdoutBytes` does not apply.
   */
  onStdoutLine?: (line: string) => void;
  /**
   * Run at a lower CPU priority (nice +10): work nothing waits for yet, which should take only the CPU that what
   * something waits for leaves. @default false
   */
  lowPriority?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
  timedOut: boolean;
  aborted: boolean;
  stdoutOverflow: boolean;
  /** Set when the binary could not be started at all (ENOENT, EACCES). */
  spawnError: Error | null;
}

/**
 * Signals that end a tool from outside without saying anything about its input: the kernel's OOM killer and an
 * operator's kill send SIGKILL (ffmpeg catches SIGTERM and SIGINT and exits with a code instead). A crash signal
 * (SIGSEGV, SIGABRT) is not here: a crafted file can cause one, and then the file is what failed.
 */
const OUTSIDE_SIGNALS: ReadonlySet<string> = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP']);

/** The signal that ended a tool from outside the service, or null (it exited, crashed, or the service ended it). */
export function outsideSignal(signal: NodeJS.Signals | null, endedByUs: boolean): NodeJS.Signals | null {
  return signal !== null && !endedByUs && OUTSIDE_SIGNALS.has(signal) ? signal : null;
}

/** The same for a runProcess result: a timeout, an abort and an output overflow are the service's own kills. */
export function killedFromOutside(r: RunResult): NodeJS.Signals | null {
  return outsideSignal(r.signal, r.timedOut || r.aborted || r.stdoutOverflow);
}

/**
 * What a tool killed from outside means: the service's fault (short of memory, or its process killed), not the
 * file's. Without this the kill read as the file failing to decode (422 MEDIA_CORRUPT), and a tenant whose
 * recording was fine was told it was damaged.
 */
export function toolKilledError(tool: string, signal: NodeJS.Signals, doing: string): AppError {
  return new AppError(
    'INTERNAL',
    `${tool} was killed (${signal}) while ${doing}, by something outside the service (the system out of memory, or an operator); the file is not at fault.`,
    { details: { reason: 'tool_killed', signal } },
  );
}

/**
 * Runs a short-lived tool (ffprobe, an ffmpeg check) to completion. Never rejects: the caller maps
 * the result to its own typed error, because only it knows what a failure means.
 */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const maxStdout = opts.maxStdoutBytes ?? 1024 * 1024;
  const tailMax = opts.stderrTailBytes ?? 64 * 1024;
  return new Promise((resolve) => {
    const result: RunResult = {
      code: null,
      signal: null,
      stdout: '',
      stderrTail: '',
      timedOut: false,
      aborted: false,
      stdoutOverflow: false,
      spawnError: null,
    };
    if (opts.signal?.aborted) {
      result.aborted = true;
      resolve(result);
      return;
    }
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (opts.lowPriority && child.pid !== undefined) {
      try {
        // Below the service's own priority: an absolute 10 would put a service started at nice 15 (by root)
        // below its own scans ahead of need.
        os.setPriority(child.pid, Math.min(NICEST, os.getPriority() + LOW_PRIORITY));
      } catch {
        // Gone already, or not allowed: it runs at the usual priority, which is only slower for the others.
      }
    }
    let stdoutBytes = 0;
    const outLines = opts.onStdoutLine ? lineSplitter(opts.onStdoutLine) : null;
    const errLines = opts.onStderrLine ? lineSplitter(opts.onStderrLine) : null;
    const kill = (): void => {
      // SIGKILL: a hung demuxer may ignore SIGTERM, and nothing here needs a clean shutdown.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      result.timedOut = true;
      kill();
    }, opts.timeoutS * 1000);
    const onAbort = (): void => {
      result.aborted = true;
      kill();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (outLines) {
        outLines.push(chunk);
        return;
      }
      if (result.stdoutOverflow) return;
      stdoutBytes += Buffer.byteLength(chunk);
      if (stdoutBytes > maxStdout) {
        result.stdoutOverflow = true;
        kill();
        return;
      }
      result.stdout += chunk;
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      result.stderrTail = (result.stderrTail + chunk).slice(-tailMax);
      errLines?.push(chunk);
    });
    child.on('error', (err) => {
      result.spawnError = err;
    });
    // 'close' (not 'exit') so every byte of both pipes has been read.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      outLines?.end();
      errLines?.end();
      result.code = code;
      result.signal = signal;
      resolve(result);
    });
  });
}
