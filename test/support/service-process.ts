import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { FAKE_OPENAI_KEY } from '../fake-openai/server.ts';
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

/**
 * The env of a service on a fake provider at `fakeUrl`: 4 s chunks, `concurrency` of them sent at once, a rate
 * limit that never holds a request back.
 */
export function onFakeProvider(fakeUrl: string, concurrency: number): Record<string, string> {
  return {
    OPENAI_API_KEY: FAKE_OPENAI_KEY,
    OPENAI_BASE_URL: fakeUrl,
    CHUNK_SECONDS: '4',
    TRANSCRIBE_CONCURRENCY: String(concurrency),
    RATE_LIMIT_RPM: '6000',
    RATE_LIMIT_BURST: '50',
  };
}

/**
 * The env of a scale-out process whose worker gives a frozen worker's jobs up soon: its queue lock lasts `lockMs`,
 * stalled jobs are looked for every 500 ms, shutdown waits 2 s, and event-loop delay (a test's own servers share
 * the machine) refuses nothing.
 */
export function quickLockScaleOut(redisUrl: string, role: 'api' | 'worker', lockMs: number): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    ROLE: role,
    WORKER_LOCK_MS: String(lockMs),
    WORKER_STALLED_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '2000',
    PRESSURE_EVENT_LOOP_DELAY_MS: '0',
  };
}

/** Kills every one of `procs` still running (one stopped by SIGSTOP is woken first) and waits for them to exit. */
export async function killAll(procs: readonly ServiceProcess[]): Promise<void> {
  for (const p of procs) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    p.child.kill('SIGCONT');
    p.child.kill('SIGKILL');
  }
  await Promise.all(procs.map((p) => p.exited));
}
