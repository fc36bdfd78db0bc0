/**
 * The compose `cluster` profile's proxy, docker/caddy/Caddyfile, checked with Debian's caddy (Docker does not run
 * where this project is developed): it validates, it sends every request to the api service's replicas looked up by
 * name, and, run for real with only its listen address and the looked-up name moved to 127.0.0.1, it streams an
 * upload to the replica while the client is still sending it and passes an event stream's events as they are
 * written. The replica here is a small HTTP server that records what reaches it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, root, service } from '../support/compose-cluster.ts';
import { freePort } from '../support/ports.ts';
import { runCommand, type CommandRun } from '../support/run-command.ts';
import { until } from '../support/until.ts';

interface Handler {
  handler: string;
  dynamic_upstreams?: { source: string; name: string; port: string };
  upstreams?: unknown[];
}
interface Adapted {
  apps: { http: { servers: Record<string, { listen: string[]; routes: Array<{ handle: Handler[] }> }> } };
}

async function caddy(args: string[]): Promise<CommandRun> {
  try {
    return await runCommand('caddy', args, {}, root);
  } catch (err) {
    throw new Error(`caddy did not run (apt-get install caddy, or run scripts/test.sh): ${String(err)}`, {
      cause: err,
    });
  }
}

async function adapted(): Promise<Adapted> {
  const run = await caddy(['adapt', '--config', 'docker/caddy/Caddyfile', '--adapter', 'caddyfile']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Adapted;
}

const handlersOf = (config: Adapted) =>
  Object.values(config.apps.http.servers).flatMap((s) => s.routes.flatMap((r) => r.handle));

describe('docker/caddy/Caddyfile', () => {
  it('is mounted where the caddy image reads it, and passes caddy validate', async () => {
    expect(service('proxy').volumes).toEqual(['./caddy/Caddyfile:/etc/caddy/Caddyfile:ro']);
    const run = await caddy(['validate', '--config', 'docker/caddy/Caddyfile', '--adapter', 'caddyfile']);
    expect(run.stdout + run.stderr).toContain('Valid configuration');
    expect(run.code).toBe(0);
  });

  it('sends every request to the replicas of the api service, looked up by name, on the port they listen on', async () => {
    const config = await adapted();
    expect(Object.values(config.apps.http.servers).map((s) => s.listen)).toEqual([[':80']]);
    const handlers = handlersOf(config);
    expect(handlers.map((h) => h.handler)).toEqual(['reverse_proxy']);
    expect(handlers[0]?.upstreams).toBeUndefined();
    expect(handlers[0]?.dynamic_upstreams).toMatchObject({
      source: 'a',
      name: API,
      port: service(API).environment?.PORT,
    });
  });
});

describe('docker/caddy/Caddyfile, run', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cluster-proxy-'));
  let proxy: ChildProcess | undefined;
  let proxyPort = 0;
  let proxyLog = '';
  /** Upload bytes the replica has received so far, over every request. */
  let uploadBytes = 0;
  let endStream: (() => void) | undefined;
  /** The X-Forwarded-For of the last GET /whoami that reached the replica. */
  let forwardedFor: string | undefined;

  const replica = http.createServer((req, res) => {
    if (req.method === 'POST') {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        uploadBytes += chunk.length;
      });
      req.on('end', () => res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes })));
      return;
    }
    if (req.url?.endsWith('/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('id: 1\ndata: one\n\n');
      endStream = () => res.end('id: 2\ndata: two\n\n');
      return;
    }
    if (req.url === '/whoami') forwardedFor = String(req.headers['x-forwarded-for']);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  });

  beforeAll(async () => {
    replica.listen(0, '127.0.0.1');
    await once(replica, 'listening');
    const config = await adapted();
    proxyPort = await freePort();
    // Only the addresses move: the listener to a free loopback port, the looked-up name to this replica (an IP
    // literal resolves to itself). Load balancing, health, timeouts and streaming stay the file's.
    for (const server of Object.values(config.apps.http.servers)) server.listen = [`127.0.0.1:${proxyPort}`];
    const upstream = handlersOf(config)[0]?.dynamic_upstreams;
    if (upstream === undefined) throw new Error('the Caddyfile has no dynamic upstreams');
    upstream.name = '127.0.0.1';
    upstream.port = String((replica.address() as AddressInfo).port);
    writeFileSync(path.join(dir, 'caddy.json'), JSON.stringify(config));
    proxy = spawn('caddy', ['run', '--config', path.join(dir, 'caddy.json')], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proxy.stderr?.on('data', (d: Buffer) => (proxyLog += d.toString()));
    await until(
      async () =>
        fetch(`http://127.0.0.1:${proxyPort}/health/live`).then(
          (r) => r.status === 200,
          () => false,
        ),
      () => `caddy to answer through the proxy (its log: ${proxyLog.slice(-2000)})`,
      { timeoutMs: 20_000 },
    );
  });

  afterAll(async () => {
    // SIGKILL: the proxy keeps nothing, and a graceful stop would wait for a connection a failed test left open.
    if (proxy?.exitCode === null) {
      proxy.kill('SIGKILL');
      await once(proxy, 'exit');
    }
    replica.closeAllConnections();
    replica.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams an upload to the replica while the client is still sending it (no request buffering)', async () => {
    const first = Buffer.alloc(256 * 1024, 1);
    const rest = Buffer.alloc(768 * 1024, 2);
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'content-type': 'application/octet-stream', 'content-length': first.length + rest.length },
    });
    const answer = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
    });
    const before = uploadBytes;
    try {
      req.write(first);
      // A proxy that buffered the body would hold these bytes until the client's last one: this wait would fail.
      await until(() => uploadBytes > before, 'the first bytes of an upload still being sent to reach the replica', {
        timeoutMs: 15_000,
      });
      req.end(rest);
      const res = await answer;
      let body = '';
      for await (const chunk of res) body += String(chunk);
      expect(res.statusCode).toBe(202);
      expect(JSON.parse(body)).toEqual({ bytes: first.length + rest.length });
    } finally {
      req.destroy();
    }
  });

  it("passes an event stream's events to the client as the replica writes them", async () => {
    let res: http.IncomingMessage | undefined;
    let text = '';
    const req = http.get({ host: '127.0.0.1', port: proxyPort, path: '/v1/jobs/j/events' }, (r) => {
      res = r;
      r.on('data', (chunk: Buffer) => (text += chunk.toString()));
    });
    req.on('error', () => undefined);
    try {
      // The replica keeps the response open: a proxy that buffered it would pass nothing yet, not even its head.
      await until(() => text.includes('data: one\n\n'), 'the first event while the stream is still open', {
        timeoutMs: 15_000,
      });
      expect(res?.headers['content-type']).toBe('text/event-stream');
      const ended = once(res as http.IncomingMessage, 'end');
      endStream?.();
      await ended;
      expect(text).toBe('id: 1\ndata: one\n\nid: 2\ndata: two\n\n');
    } finally {
      req.destroy();
    }
  });

  it("tells the replica the client's address in X-Forwarded-For, never one the client wrote (TRUST_PROXY believes it)", async () => {
    // The client connects from 127.0.0.3 (another host on loopback) and forges the header.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: proxyPort,
          path: '/whoami',
          localAddress: '127.0.0.3',
          headers: { 'x-forwarded-for': '198.51.100.66' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', reject);
    });
    expect(status).toBe(200);
    expect(forwardedFor).toBe('127.0.0.3');
  });
});
