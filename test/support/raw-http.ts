import net from 'node:net';

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  /** The body as text ('' for HEAD and for a connection closed without an answer). */
  body: string;
}

/**
 * One request written byte for byte over node:net, so that no client normalises the request target (percent
 * escapes, dot segments, double slashes and absolute-form lines reach the server as written). Connection: close,
 * so the answer ends with the socket; `timeoutMs` bounds the wait for it.
 */
export function rawRequest(
  url: string,
  opts: {
    method: string;
    target: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    /** The address the connection comes from (any of 127.0.0.0/8 on loopback: another client). */
    localAddress?: string;
  },
): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  const body = opts.body ?? '';
  const headers = {
    host: `${hostname}:${port}`,
    connection: 'close',
    'content-length': String(Buffer.byteLength(body)),
    ...opts.headers,
  };
  const head = [
    `${opts.method} ${opts.target} HTTP/1.1`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: hostname,
      port: Number(port),
      ...(opts.localAddress && { localAddress: opts.localAddress }),
    });
    const chunks: Buffer[] = [];
    socket.setTimeout(opts.timeoutMs ?? 10_000, () =>
      socket.destroy(
        new Error(`no complete answer to ${opts.method} ${opts.target} within ${opts.timeoutMs ?? 10_000} ms`),
      ),
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      try {
        resolve(parseReply(Buffer.concat(chunks), opts.method));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.write(`${head}\r\n\r\n${body}`);
  });
}

function parseReply(raw: Buffer, method: string): RawReply {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status)) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (method === 'HEAD') body = Buffer.alloc(0);
  else if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status, headers, body: body.toString('utf8') };
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(out);
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
