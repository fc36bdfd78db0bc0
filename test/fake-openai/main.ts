/**
 * The fake OpenAI server as a process of its own, for a test that runs it on another host:
 * `node main.ts '<json>'` with `{ host, port, controlPort, latencyMs?, jitterMs?, ownWorkInLatency?, probeWith? }`
 * (ports 0: free ones; the URL printed names the API's). Besides the API on `port` it
 * serves its request log on `controlPort` (same host), so the test reads what each host sent:
 * GET /requests (the log, JSON), GET /held (the indexes of requests held now), POST /hold?from=<address> (the
 * transcription requests from that address are read but not answered until released), POST /release?from=<address>,
 * POST /reset, POST /latency?ms=N. Prints `{"listening": "<base URL>"}` once both listen; runs until killed.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { FakeOpenAIOptions, RequestLogEntry } from './types.ts';
import { startFakeOpenAI } from './server.ts';

type ProcessOptions = Pick<FakeOpenAIOptions, 'latencyMs' | 'jitterMs' | 'ownWorkInLatency' | 'probeWith'> & {
  host: string;
  port: number;
  controlPort: number;
};

const options = JSON.parse(process.argv[2] ?? '{}') as ProcessOptions;
const holding = new Set<string>();
const held = new Map<RequestLogEntry, () => void>();
const fake = await startFakeOpenAI({
  host: options.host,
  port: options.port,
  ...(options.latencyMs === undefined ? {} : { latencyMs: options.latencyMs }),
  ...(options.jitterMs === undefined ? {} : { jitterMs: options.jitterMs }),
  ...(options.ownWorkInLatency === undefined ? {} : { ownWorkInLatency: options.ownWorkInLatency }),
  ...(options.probeWith === undefined ? {} : { probeWith: options.probeWith }),
  gate: (entry) =>
    holding.has(entry.remoteAddress ?? '')
      ? new Promise<void>((resolve) => held.set(entry, resolve))
      : Promise.resolve(),
});

function release(from: string): void {
  holding.delete(from);
  for (const [entry, resolve] of held) {
    if (entry.remoteAddress !== from) continue;
    held.delete(entry);
    resolve();
  }
}

const control = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://control');
  const from = url.searchParams.get('from') ?? '';
  req.resume();
  const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.method === 'GET' && url.pathname === '/requests') {
    json(fake.requests);
  } else if (req.method === 'GET' && url.pathname === '/held') {
    json([...held.keys()].map((e) => e.index));
  } else if (req.method === 'POST' && url.pathname === '/hold') {
    holding.add(from);
    res.writeHead(204).end();
  } else if (req.method === 'POST' && url.pathname === '/release') {
    release(from);
    res.writeHead(204).end();
  } else if (req.method === 'POST' && url.pathname === '/reset') {
    fake.reset();
    res.writeHead(204).end();
  } else if (req.method === 'POST' && url.pathname === '/latency') {
    fake.setLatency(Number(url.searchParams.get('ms') ?? 0));
    res.writeHead(204).end();
  } else {
    res.writeHead(404).end();
  }
});
control.listen(options.controlPort, options.host);
await once(control, 'listening');
process.stdout.write(`${JSON.stringify({ listening: fake.url })}\n`);
