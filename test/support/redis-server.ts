import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LOOPBACK, type Place } from './place.ts';
import { freePort } from './ports.ts';
import { until } from './until.ts';

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server the hard way (no save beyond what the AOF already holds) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Kills the server (SIGKILL) and leaves it down, until start(). */
  kill(): Promise<void>;
  /** Starts the killed server again on the same port and directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPort(host: string, port: number, child: ChildProcess): Promise<void> {
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      return new Promise<boolean>((resolve) => {
        const sock = net.connect(port, host);
        sock.once('connect', () => {
          sock.write('PING\r\n');
          sock.once('data', (d) => {
            sock.destroy();
            resolve(d.toString().startsWith('+PONG'));
          });
        });
        sock.once('error', () => resolve(false));
        // A server that accepts but never answers must not hold this check past its poll.
        sock.setTimeout(1_000, () => {
          sock.destroy();
          resolve(false);
        });
      });
    },
    `redis-server to answer PING on port ${port}`,
    { timeoutMs: 10_000, everyMs: 50 },
  );
}

/** Sends one Redis command (inline protocol) and resolves with the first line of the answer. */
function redisCommand(host: string, port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write(`${command}\r\n`));
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      resolve(d.toString('utf8').split('\r\n')[0] ?? '');
    });
    socket.once('error', reject);
  });
}

export interface TestRedisOptions {
  /** Where the server runs and listens (another host: a network namespace). */
  place?: Place;
  /** @default a port free on 127.0.0.1 */
  port?: number;
}

/**
 * A private redis-server on a free 127.0.0.1 port (or at `place`) with its own temp directory; never the system
 * service. The AOF is on (no RDB snapshots): a restart then keeps every queued job, as in docker/compose.yaml; fsync
 * on every write takes the OS's flush timing out of the test. Throws (the test fails, it is not skipped) when
 * redis-server is not installed: scripts/test.sh installs it.
 */
export async function startTestRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  const place = opts.place ?? LOOPBACK;
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('redis-server is not installed (apt-get install redis-server; scripts/test.sh does it)');
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chunkscribe-redis-'));
  const port = opts.port ?? (await freePort());
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(
      ...place.wrap('redis-server', [
        '--port',
        String(port),
        '--bind',
        place.host,
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        // Without a password Redis answers only loopback clients; another test host is not one.
        ...(place.host === LOOPBACK.host ? [] : ['--protected-mode', 'no']),
      ]),
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await waitForPort(place.host, port, child);
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    url: `redis://${place.host}:${port}`,
    port,
    dir,
    async restart() {
      await kill();
      await launch();
    },
    kill,
    start: launch,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test Redis that requires `password`. Set at run time (the server starts without one): a restart() or start()
 * drops it.
 */
export async function startPasswordRedis(password: string): Promise<TestRedis> {
  const redis = await startTestRedis();
  const answer = await redisCommand('127.0.0.1', redis.port, `CONFIG SET requirepass ${password}`);
  if (answer !== '+OK') {
    await redis.stop();
    throw new Error(`redis-server refused CONFIG SET requirepass: ${answer}`);
  }
  return redis;
}
