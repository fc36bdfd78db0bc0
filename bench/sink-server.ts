/**
 * The upload reference: a bare node:http server that writes each request body, as it arrives, to a file
 * in SINK_DIR and answers 200. What any service must at least do to take a file over loopback; the
 * service's own work (multipart parsing, size cap, probe, decode check) is the difference.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.env.SINK_DIR;
if (!dir) throw new Error('SINK_DIR is required');
let n = 0;

const server = http.createServer((req, res) => {
  const file = path.join(dir, `body-${n++}`);
  const out = createWriteStream(file);
  pipeline(req, out)
    .then(async () => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: out.bytesWritten }));
      await rm(file, { force: true });
    })
    .catch((err: unknown) => res.writeHead(500).end(String(err)));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
