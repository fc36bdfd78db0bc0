import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createModelsCheck } from '../../src/transcribe/providers/openai/models-check.ts';

/*
 * The OpenAI check without the SDK, against servers that answer oddly (the usual answers are in
 * provider-openai.test.ts, against the fake OpenAI server).
 */

let server: http.Server | null = null;
async function stop(): Promise<void> {
  const s = server;
  server = null;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}
afterEach(stop);

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server?.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
}

describe('createModelsCheck', () => {
  it('sends the key to {baseURL}/models and reads a 2xx as ok', async () => {
    const seen: Array<{ url?: string; auth?: string }> = [];
    const baseURL = await serve((req, res) => {
      seen.push({ url: req.url, auth: req.headers.authorization });
      res.end('{"object":"list","data":[]}');
    });
    expect(await createModelsCheck({ apiKey: 'sk-test', baseURL })()).toEqual({
      status: 'ok',
      detail: 'models endpoint answered',
    });
    expect(seen).toEqual([{ url: '/v1/models', auth: 'Bearer sk-test' }]);
  });

  it('reads only the head of an error body that does not end, and calls it degraded', async () => {
    const baseURL = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      const more = (): void => {
        if (!res.destroyed) res.write(' '.repeat(64 * 1024), () => setImmediate(more));
      };
      more();
    });
    expect(await createModelsCheck({ apiKey: 'sk', baseURL })()).toEqual({
      status: 'degraded',
      detail: 'models endpoint answered 500',
    });
  });

  it('finds insufficient_quota in a 429 body as the SDK does', async () => {
    const baseURL = await serve((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'quota', type: 'insufficient_quota', code: 'insufficient_quota' } }));
    });
    expect(await createModelsCheck({ apiKey: 'sk', baseURL })()).toMatchObject({
      status: 'down',
      code: 'PROVIDER_QUOTA',
    });
  });

  it('rethrows an abort for the caller to name, and calls a refused connection unavailable', async () => {
    const baseURL = await serve(() => undefined); // never answers
    const controller = new AbortController();
    const checking = createModelsCheck({ apiKey: 'sk', baseURL })(controller.signal);
    controller.abort(new Error('timed out'));
    await expect(checking).rejects.toThrow();
    const port = (server?.address() as AddressInfo).port;
    await stop();
    expect(await createModelsCheck({ apiKey: 'sk', baseURL: `http://127.0.0.1:${port}/v1` })()).toMatchObject({
      status: 'down',
      code: 'PROVIDER_UNAVAILABLE',
    });
  });
});
