/**
 * The fake OpenAI server as a process of its own, for a test that runs it on another host:
 * `node main.ts '<json>'` with `{ host, port, controlPort, latencyMs?, jitterMs? }`. Besides the API on `port` it
 * serves its request log on `controlPort` (same host), so the test reads what each host sent:
 * GET /requests (the log, JSON), POST /reset, POST /latency?ms=N. Prints `{"listening": "<base URL>"}` once both
 * listen; runs until killed.
 */
import { once } from 'node:events';
import http from 'node:http';
import { startFakeOpenAI } from './server.ts';

interface ProcessOptions {
  host: string;
  port: number;
  controlPort: number;
  latencyMs?: number;
  jitterMs?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ProcessOptions;
const fake = await startFakeOpenAI({
  host: options.host,
  port: options.port,
  ...(options.latencyMs === undefined ? {} : { latencyMs: options.latencyMs }),
  ...(options.jitterMs === undefined ? {} : { jitterMs: options.jitterMs }),
});

const control = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://control');
  req.resume();
  if (req.method === 'GET' && url.pathname === '/requests') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fake.requests));
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
