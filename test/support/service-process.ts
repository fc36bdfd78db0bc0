import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const SERVER = path.resolve(import.meta.dirname, '../../src/server.ts');

export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves with the base URL once the service logs that it listens; rejects if it exits first. */
  url: Promise<string>;
  /** Every stdout line (pino JSON) so far. */
  lines: string[];
  exited: Promise<void>;
  kill9(): Promise<void>;
}

/**
 * The real service process (`node src/server.ts`, as production runs it) on 127.0.0.1 with a free port, its
 * environment only what is passed here (no inherited secrets or settings), logging at info; `nodeArgs` go
 * before the entry (e.g. an `--import` that watches the process).
 */
export function spawnService(env: Record<string, string>, nodeArgs: readonly string[] = []): ServiceProcess {
  const child = spawn(process.execPath, [...nodeArgs, SERVER], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      CHUNK_OVERLAP_SECONDS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then(() => reject(new Error('the service exited before it listened')));
  });
  url.catch(() => undefined);
  return {
    child,
    url,
    lines,
    exited,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
