import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startServer, type TestServer } from '../helper.ts';
import { rawRequest, type RawReply } from '../support/raw-http.ts';
import { expectError } from './hostile-kit.ts';

/** A raw answer as expectError reads it, after checking it is JSON. */
function parsed(reply: RawReply): { status: number; body: unknown } {
  expect(reply.headers['content-type'], reply.body).toMatch(/^application\/json/);
  return { status: reply.status, body: JSON.parse(reply.body) as unknown };
}

describe('errors Fastify or Node would answer in their own shapes', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it('answers a URL whose percent-encoding does not decode with 400 INVALID_FIELD (field url)', async () => {
    const reply = await rawRequest(server.url, { method: 'GET', target: '/%C0%AFv1/jobs' });
    expectError(parsed(reply), 400, 'INVALID_FIELD', { field: 'url' });
  });

  it('answers a job id longer than any id with 404 NOT_FOUND', async () => {
    const reply = await rawRequest(server.url, { method: 'GET', target: `/v1/jobs/job_${'A'.repeat(200)}` });
    expectError(parsed(reply), 404, 'NOT_FOUND');
  });

  it('answers a body of a type no route reads with 400 FILE_MISSING', async () => {
    const reply = await rawRequest(server.url, {
      method: 'POST',
      target: '/v1/jobs',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expectError(parsed(reply), 400, 'FILE_MISSING');
  });

  it('answers a request line the HTTP parser refuses with 400 INVALID_FIELD (field request) and closes', async () => {
    const reply = await rawRequest(server.url, { method: 'GET', target: '/ v1/jobs' });
    expectError(parsed(reply), 400, 'INVALID_FIELD', { field: 'request' });
    expect(reply.headers.connection).toBe('close');
  });

  it('answers headers larger than Node takes with 400 INVALID_FIELD (field headers)', async () => {
    const reply = await rawRequest(server.url, {
      method: 'GET',
      target: '/v1/jobs',
      headers: { 'x-big': 'a'.repeat(20_000) },
    });
    expectError(parsed(reply), 400, 'INVALID_FIELD', { field: 'headers' });
  });

  it('answers a request whose head did not arrive in time with 408 UPLOAD_TOO_SLOW (reason request_timeout)', async () => {
    const { port } = new URL(server.url);
    const accepted = new Promise<net.Socket>((resolve) => server.app.server.once('connection', resolve));
    const client = net.connect(Number(port), '127.0.0.1');
    const got: Buffer[] = [];
    client.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise<void>((resolve, reject) => {
      client.once('end', () => resolve());
      client.once('error', reject);
    });
    // Half a request head: Node's headers timeout would end it. The test emits the error Node's timeout check
    // emits, rather than wait the timeout out (Node checks every 30 s).
    client.write('GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const socket = await accepted;
    server.app.server.emit(
      'clientError',
      Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
      socket,
    );
    await ended;
    const text = Buffer.concat(got).toString('utf8');
    const [head = '', body = ''] = text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(head).toContain('Content-Type: application/json');
    expect(Number(/Content-Length: (\d+)/.exec(head)?.[1])).toBe(Buffer.byteLength(body));
    expectError({ status: 408, body: JSON.parse(body) as unknown }, 408, 'UPLOAD_TOO_SLOW', {
      reason: 'request_timeout',
    });
  });

  it('still serves after all of them', async () => {
    const reply = await rawRequest(server.url, { method: 'GET', target: '/health/live' });
    expect(reply.status).toBe(200);
  });
});
