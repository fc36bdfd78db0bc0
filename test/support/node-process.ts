import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LOOPBACK, type Place } from './place.ts';

export interface NodeProcess<T> {
  child: ChildProcess;
  /** What `ready` found in the first stdout line it accepted; rejects if the process exits first. */
  ready: Promise<T>;
  /** Every stdout line so far. */
  lines: string[];
  exited: Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
}

/**
 * A Node program (`node <script> args`, types stripped as the service runs) at `place`, its environment only PATH
 * and `env`. `ready` reads each stdout line until it returns something other than null.
 */
export function spawnNode<T>(
  script: string,
  args: readonly string[],
  options: {
    place?: Place;
    env?: Record<string, string>;
    nodeArgs?: readonly string[];
    ready: (line: string) => T | null;
    name: string;
  },
): NodeProcess<T> {
  const place = options.place ?? LOOPBACK;
  const child = spawn(...place.wrap(process.execPath, [...(options.nodeArgs ?? []), script, ...args]), {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<T>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const found = options.ready(line);
      if (found !== null) resolve(found);
    });
    void exited.then(() => reject(new Error(`${options.name} exited before it listened`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    lines,
    exited,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A `ready` for programs that print one JSON line `{"listening": "<url>"}`. */
export function listeningLine(line: string): string | null {
  try {
    const parsed = JSON.parse(line) as { listening?: unknown };
    return typeof parsed.listening === 'string' ? parsed.listening : null;
  } catch {
    return null;
  }
}
