import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { jobFiles, removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { until } from '../support/until.ts';
import { expectError, expectNothingLeft, multipart } from './hostile-kit.ts';

const MiB = 1024 * 1024;
const LIMIT = MiB;

interface SlowSendResult {
  status: number;
  body: unknown;
  /** Body bytes the sender had handed to the socket when the response arrived. */
  sentWhenAnswered: number;
  total: number;
}

/**
 * Sends `head`, then `total` bytes of filler in 64 KiB writes (each after the previous one drained, with a pause),
 * stopping as soon as the response arrives. Chunked unless `contentLength` is given.
 */
function slowSend(
  server: TestServer,
  opts: { contentType: string; head: Buffer; total: number; contentLength?: number },
): Promise<SlowSendResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': opts.contentType };
    if (opts.contentLength !== undefined) headers['content-length'] = String(opts.contentLength);
    const req = http.request(`${server.url}/v1/jobs`, { method: 'POST', headers });
    let sent = 0;
    let answered = false;
    req.on('error', (err) => {
      // The server may close the connection after answering early; only an error before the answer counts.
      if (!answered) reject(err);
    });
    req.on('response', (res) => {
      answered = true;
      const sentWhenAnswered = sent;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
          sentWhenAnswered,
          total: opts.total,
        });
      });
    });
    req.flushHeaders();
    const filler = Buffer.alloc(64 * 1024, 0x5a);
    const pump = (): void => {
      if (answered || req.destroyed) return;
      if (sent >= opts.total) {
        req.end();
        return;
      }
      const piece = sent === 0 ? Buffer.concat([opts.head, filler]) : filler;
      sent += piece.length;
      req.write(piece, () => setTimeout(pump, 2));
    };
    pump();
  });
}

describe('uploads cut short or too large, on the wire', () => {
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', MAX_UPLOAD_BYTES: String(LIMIT) });
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
  });

  const fileHead = (boundary: string) =>
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
    );

  it('answers 413 FILE_TOO_LARGE while a chunked body is still streaming', async () => {
    const total = 32 * MiB;
    const res = await slowSend(server, {
      contentType: 'multipart/form-data; boundary=B0undary',
      head: fileHead('B0undary'),
      total,
    });
    expectError(res, 413, 'FILE_TOO_LARGE');
    expect(res.sentWhenAnswered).toBeGreaterThan(LIMIT);
    expect(res.sentWhenAnswered).toBeLessThan(total / 2);
    await expectNothingLeft(server);
  });

  it('answers 413 FILE_TOO_LARGE on a declared Content-Length over the limit before the body is read', async () => {
    const total = 32 * MiB;
    const res = await slowSend(server, {
      contentType: 'multipart/form-data; boundary=B0undary',
      head: fileHead('B0undary'),
      total,
      contentLength: total + 200,
    });
    expectError(res, 413, 'FILE_TOO_LARGE');
    expect(res.sentWhenAnswered).toBeLessThan(LIMIT);
    await expectNothingLeft(server);
  });

  it('keeps a keep-alive connection usable after a refusal sent while the body was still arriving', async () => {
    // On a raw socket: Node's own client does not give a socket back to its agent when the answer ends before the
    // request is written, so only the wire shows whether the server kept the connection usable.
    const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
    let wire = '';
    let closed = false;
    socket.on('data', (d: Buffer) => (wire += d.toString('latin1')));
    socket.on('close', () => (closed = true));
    const write = (data: Buffer | string) =>
      new Promise<void>((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
    const chunk = (data: Buffer) =>
      Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    const answers = () => wire.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const boundary = 'KeepAlive';
      await write(
        `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
          'Transfer-Encoding: chunked\r\n\r\n',
      );
      await write(chunk(fileHead(boundary)));
      // Past the cap, then nothing more until the refusal is here: it is sent while the body is still arriving.
      const piece = Buffer.alloc(64 * 1024, 1);
      for (let sent = 0; sent <= LIMIT + piece.length; sent += piece.length) await write(chunk(piece));
      await until(() => answers().length === 1, 'the refusal');
      expect(answers()).toEqual(['HTTP/1.1 413']);
      // The rest of the body (the server reads it and throws it away), then the next request on the same socket.
      for (let i = 0; i < 16; i++) await write(chunk(piece));
      await write(chunk(Buffer.from(`\r\n--${boundary}--\r\n`)));
      await write('0\r\n\r\n');
      await write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await until(() => answers().length === 2 || closed, 'the second answer or the socket closed');
      expect({ answers: answers(), closed }).toEqual({ answers: ['HTTP/1.1 413', 'HTTP/1.1 200'], closed: false });
      await expectNothingLeft(server);
    } finally {
      socket.destroy();
    }
  });

  it('cuts off a keep-alive client that keeps sending long after the refusal', async () => {
    // Keep-alive: a client that asked for `Connection: close` is disconnected right after the answer anyway.
    const agent = new http.Agent({ keepAlive: true });
    const res = await new Promise<{ status: number | null; ended: 'error' | 'sent-all' }>((resolve) => {
      const req = http.request(`${server.url}/v1/jobs`, {
        method: 'POST',
        agent,
        headers: { 'content-type': 'multipart/form-data; boundary=Flood' },
      });
      let status: number | null = null;
      let sent = 0;
      req.on('response', (r) => {
        status = r.statusCode ?? null;
        r.resume();
      });
      req.on('error', () => resolve({ status, ended: 'error' }));
      req.write(fileHead('Flood'));
      const piece = Buffer.alloc(256 * 1024, 7);
      const pump = (): void => {
        if (req.destroyed) return;
        if (sent >= 512 * MiB) {
          req.destroy();
          return resolve({ status, ended: 'sent-all' });
        }
        sent += piece.length;
        req.write(piece, () => setImmediate(pump));
      };
      pump();
    });
    agent.destroy();
    expect(res).toEqual({ status: 413, ended: 'error' });
    await expectNothingLeft(server);
  });

  it('removes the partial upload of a client that disconnects mid-upload and keeps serving', async () => {
    const form = multipart([
      { name: 'language', data: 'en' },
      { name: 'file', filename: 'speech.wav', contentType: 'audio/wav', data: Buffer.alloc(800 * 1024, 0x11) },
    ]);
    const half = Math.floor(form.body.length / 2);
    const req = http.request(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': form.contentType, 'content-length': String(form.body.length) },
    });
    const answered = new Promise<string>((resolve) => {
      req.on('response', () => resolve('response'));
      req.on('error', () => resolve('error'));
      req.on('close', () => resolve('close'));
    });
    req.write(form.body.subarray(0, half));
    // The partial file is on disk before the client goes away.
    await until(
      async () => (await jobFiles(server.dataDir)).some((f) => f.endsWith('/upload')),
      'the partial upload on disk',
      { everyMs: 50 },
    );
    req.destroy();
    expect(await answered).not.toBe('response');

    await until(async () => (await jobFiles(server.dataDir)).length === 0, 'the partial upload to be removed', {
      everyMs: 50,
    });
    await expectNothingLeft(server);
    const later = await upload(server.url, speech.wav, { dry_run: 'true' });
    expect(later.status).toBe(200);
  });
});
