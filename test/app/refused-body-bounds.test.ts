import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, jobFiles, removeDir, startServer, type TestServer } from '../helper.ts';

const KEY = 'refused-body-key-0123456789abcdef';
/** What the client offers to send after the answer: far more than the server may read and throw away (64 MiB). */
const OFFERED_BYTES = 512 * 1024 * 1024;

interface Sent {
  /** The answer's status line. */
  statusLine: string;
  /** The answer's JSON body. */
  body: unknown;
  /** Bytes of the body the client got onto the connection before it was cut (or before it gave up offering). */
  sentBytes: number;
  /** Whether the server cut the connection (rather than the client stopping at OFFERED_BYTES). */
  cut: boolean;
}

/**
 * A request that announces a 100 GB body and then sends it as fast as the connection takes it, without waiting
 * for the answer, until the server cuts the connection or OFFERED_BYTES are out. Bounded by bytes, not time.
 */
function floodAfterAnswer(url: string, path: string, headers: string): Promise<Sent> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let answer = '';
    let sentBytes = 0;
    let done = false;
    const finish = (cut: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      const json = /content-length: (\d+)/i.exec(head) ? body : '';
      resolve({ statusLine: head.split('\r\n')[0] ?? '', body: json === '' ? null : JSON.parse(json), sentBytes, cut });
    };
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${hostname}\r\n${headers}` +
        'content-type: multipart/form-data; boundary=b\r\ncontent-length: 100000000000\r\n\r\n',
    );
    const block = Buffer.alloc(1024 * 1024, 0x61);
    const pump = () => {
      while (!done) {
        if (sentBytes >= OFFERED_BYTES) return finish(false);
        sentBytes += block.length;
        if (!socket.write(block)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

describe('the body of a request answered before it was read', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ API_KEYS: KEY, MAX_UPLOAD_BYTES: String(10 * 1024 * 1024) });
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
  });

  // Before: Node read and threw away whatever followed a 401 or 404 for as long as the client sent it (up to
  // REQUEST_TIMEOUT_MS, an hour): a client without a key could make the server read unbounded bytes.
  for (const [what, path, headers, status, code] of [
    ['without a key (401)', '/v1/jobs', '', 401, 'UNAUTHORIZED'],
    ['with a wrong key (401)', '/v1/jobs', 'authorization: Bearer wrong-key\r\n', 401, 'UNAUTHORIZED'],
    ['to the OpenAI route without a key (401)', '/v1/audio/transcriptions', '', 401, 'invalid_api_key'],
    ['to no route (404)', '/v1/nothing-here', `authorization: Bearer ${KEY}\r\n`, 404, 'NOT_FOUND'],
    ['declared over the size cap (413)', '/v1/jobs', `authorization: Bearer ${KEY}\r\n`, 413, 'FILE_TOO_LARGE'],
  ] as const) {
    it(`is cut after a bounded amount when sent ${what}`, async () => {
      const sent = await floodAfterAnswer(server.url, path, headers);
      expect(sent.statusLine).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(JSON.stringify(sent.body)).toContain(code);
      // 64 MiB read and thrown away, plus what the two sockets' buffers hold on loopback.
      expect(sent.cut).toBe(true);
      expect(sent.sentBytes).toBeLessThan(OFFERED_BYTES);
    });
  }

  it('keeps the connection for the next request when the refused body ends', async () => {
    // A whole small body after a 401, then a second request on the same connection: both are answered.
    const { hostname, port } = new URL(server.url);
    const body = '--b\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n--b--\r\n';
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: hostname, port: Number(port) });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if ((text.match(/HTTP\/1\.1 /g) ?? []).length === 2 && text.endsWith('}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
      socket.write(
        `POST /v1/jobs HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: multipart/form-data; boundary=b\r\n` +
          `content-length: ${body.length}\r\n\r\n${body}` +
          `GET /v1/jobs HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${KEY}\r\n\r\n`,
      );
    });
    expect(answers.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 401 ', 'HTTP/1.1 200 ']);
  });

  it('leaves nothing behind, and the server still serves', async () => {
    expect(await jobFiles(server.dataDir)).toEqual([]);
    const list = await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs`, { authorization: `Bearer ${KEY}` });
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([]);
  });
});
