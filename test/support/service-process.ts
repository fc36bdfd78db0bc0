import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { spawnNode } from './node-process.ts';
import { LOOPBACK, type Place } from './place.ts';

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
 * before the entry (e.g. an `--import` that watches the process). At another `place` (a network namespace:
 * test/support/netns.ts) it runs there and listens on that host's address.
 */
export function spawnService(
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
  place: Place = LOOPBACK,
): ServiceProcess {
  const proc = spawnNode(SERVER, [], {
    place,
    nodeArgs,
    name: 'the service',
    env: { HOST: place.host, PORT: '0', LOG_LEVEL: 'info', CHUNK_OVERLAP_SECONDS: '0', ...env },
    ready: (line) => /listening at (http:\/\/[\d.]+:\d+)/.exec(line)?.[1] ?? null,
  });
  return { child: proc.child, url: proc.ready, lines: proc.lines, exited: proc.exited, kill9: proc.kill9 };
}
