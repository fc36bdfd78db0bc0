import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFiles, removeDir, startServer, type TestServer } from '../helper.ts';
import { rawRequest, type RawReply } from '../support/raw-http.ts';

/*
 * Open mode (no API keys) serves clients on its own machine only (OPEN_MODE_CLIENTS=loopback, the default), by the
 * client address as TRUST_PROXY resolves it. On loopback each 127.0.0.x source address is another local client:
 * 127.0.0.2 is a reverse proxy on this machine, 127.0.0.3 another local program. A remote client behind the proxy
 * is the address the proxy forwards. Clients that really connect from another host: test/multihost/open-mode.test.ts.
 */

const PROXY = '127.0.0.2';
const OTHER = '127.0.0.3';
const REMOTE = '198.51.100.7';

interface Answer {
  status: number;
  code: string | undefined;
  reason: unknown;
  message: string | undefined;
}

function answer(reply: RawReply): Answer {
  const body = JSON.parse(reply.body) as { error?: { code: string; message: string; details?: { reason?: unknown } } };
  return {
    status: reply.status,
    code: body.error?.code,
    reason: body.error?.details?.reason,
    message: body.error?.message,
  };
}

describe('open mode behind a reverse proxy on this machine', () => {
  let trusted: TestServer;
  let untrusted: TestServer;
  let everyone: TestServer;

  beforeAll(async () => {
    const open = { API_KEYS: undefined, API_KEYS_FILE: undefined, TRANSCRIBE_PROVIDER: 'local' };
    trusted = await startServer({ ...open, TRUST_PROXY: PROXY });
    untrusted = await startServer(open);
    everyone = await startServer({ ...open, TRUST_PROXY: PROXY, OPEN_MODE_CLIENTS: 'any' });
  });
  afterAll(async () => {
    for (const s of [trusted, untrusted, everyone]) {
      await s?.close();
      if (s) await removeDir(s.dataDir);
    }
  });

  const send = (server: TestServer, method: string, target: string, from: string, headers = {}) =>
    rawRequest(server.url, { method, target, localAddress: from, headers });
  const upload = (server: TestServer, from: string, headers: Record<string, string>) =>
    rawRequest(server.url, {
      method: 'POST',
      target: '/v1/jobs',
      localAddress: from,
      headers: { 'content-type': 'multipart/form-data; boundary=b', ...headers },
      body: '--b\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n--b--\r\n',
    });
  const healthView = async (server: TestServer, from: string, headers = {}) =>
    (JSON.parse((await send(server, 'GET', '/health', from, headers)).body) as { view: string }).view;

  it('refuses a remote client the trusted proxy forwards, with 401 open_mode_remote, on every /v1 route', async () => {
    const forwarded = { 'x-forwarded-for': REMOTE };
    for (const [method, target] of [
      ['GET', '/v1/jobs'],
      ['GET', '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA'],
      ['DELETE', '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA'],
    ] as const) {
      expect(answer(await send(trusted, method, target, PROXY, forwarded)), `${method} ${target}`).toMatchObject({
        status: 401,
        code: 'UNAUTHORIZED',
        reason: 'open_mode_remote',
      });
    }
    // The OpenAI-compatible routes answer in OpenAI's shape (no details): the message says it.
    const models = JSON.parse((await send(trusted, 'GET', '/v1/models', PROXY, forwarded)).body) as {
      error: { code: string; message: string };
    };
    expect(models.error.code).toBe('invalid_api_key');
    expect(models.error.message).toContain('OPEN_MODE_CLIENTS=any');
    const refused = answer(await upload(trusted, PROXY, forwarded));
    expect(refused).toMatchObject({ status: 401, code: 'UNAUTHORIZED', reason: 'open_mode_remote' });
    expect(refused.message).toContain('API_KEYS');
    expect(refused.message).toContain('OPEN_MODE_CLIENTS=any');
    expect(await jobFiles(trusted.dataDir)).toEqual([]);
    // /health answers, in the view of anyone without a credential: not the operator's.
    expect(await healthView(trusted, PROXY, forwarded)).toBe('public');
    // What a client puts in front of the header is not believed: the proxy appends the address it saw.
    const claimed = { 'x-forwarded-for': `127.0.0.1, ${REMOTE}` };
    expect(answer(await send(trusted, 'GET', '/v1/jobs', PROXY, claimed))).toMatchObject({
      status: 401,
      reason: 'open_mode_remote',
    });
  });

  it('serves a local client through the trusted proxy, and local clients that connect directly', async () => {
    expect((await send(trusted, 'GET', '/v1/jobs', PROXY, { 'x-forwarded-for': '127.0.0.1' })).status).toBe(200);
    expect(await healthView(trusted, PROXY, { 'x-forwarded-for': '127.0.0.1' })).toBe('operator');
    expect((await send(trusted, 'GET', '/v1/jobs', OTHER)).status).toBe(200);
    expect(await healthView(trusted, OTHER)).toBe('operator');
  });

  it('refuses what a local proxy TRUST_PROXY does not name forwards (open_mode_proxied): the client is unknown', async () => {
    for (const [server, from] of [
      [untrusted, PROXY],
      [trusted, OTHER],
    ] as const) {
      for (const headers of [
        { 'x-forwarded-for': REMOTE },
        { 'x-forwarded-for': '127.0.0.1' },
        { forwarded: `for=${REMOTE}` },
        { 'x-real-ip': REMOTE },
      ]) {
        const refused = answer(await send(server, 'GET', '/v1/jobs', from, headers));
        expect(refused, JSON.stringify(headers)).toMatchObject({
          status: 401,
          code: 'UNAUTHORIZED',
          reason: 'open_mode_proxied',
        });
        expect(refused.message).toContain('TRUST_PROXY');
        expect(await healthView(server, from, headers)).toBe('public');
      }
      expect(answer(await upload(server, from, { 'x-forwarded-for': REMOTE }))).toMatchObject({
        status: 401,
        reason: 'open_mode_proxied',
      });
      expect(await jobFiles(server.dataDir)).toEqual([]);
      // The same program without the header is a local client.
      expect((await send(server, 'GET', '/v1/jobs', from)).status).toBe(200);
    }
  });

  it('serves every client with OPEN_MODE_CLIENTS=any, as before', async () => {
    expect((await send(everyone, 'GET', '/v1/jobs', PROXY, { 'x-forwarded-for': REMOTE })).status).toBe(200);
    expect(await healthView(everyone, PROXY, { 'x-forwarded-for': REMOTE })).toBe('operator');
    expect((await send(everyone, 'GET', '/v1/jobs', OTHER, { 'x-forwarded-for': REMOTE })).status).toBe(200);
    expect(answer(await upload(everyone, PROXY, { 'x-forwarded-for': REMOTE })).status).not.toBe(401);
  });
});
