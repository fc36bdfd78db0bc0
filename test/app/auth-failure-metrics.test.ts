import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startServer, type TestServer } from '../helper.ts';
import { parsePromText, sumOf } from '../support/prom-text.ts';
import { rawRequest } from '../support/raw-http.ts';

const KEY = 'metrics-lockout-key-0123456789';
const METRICS_TOKEN = 'metrics-lockout-token-0123456789';
const LIMIT = 3;
const FAMILIES = ['v1', 'metrics', 'health'];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('failed credentials and lockouts on /metrics', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ API_KEYS: KEY, METRICS_TOKEN, AUTH_FAILURES_PER_MINUTE: String(LIMIT) });
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
  });

  /**
   * Both counters by route family, scraped with the token from 127.0.0.2: another client address than the guesses'
   * (127.0.0.1), which the lockout refuses whatever they send.
   */
  async function counts(): Promise<Record<string, Record<string, number | undefined>>> {
    const res = await rawRequest(server.url, {
      method: 'GET',
      target: '/metrics',
      headers: bearer(METRICS_TOKEN),
      localAddress: '127.0.0.2',
    });
    expect(res.status, res.body).toBe(200);
    const samples = parsePromText(res.body);
    const by = (name: string) =>
      Object.fromEntries(FAMILIES.map((f) => [f, sumOf(samples, name, { route_family: f })]));
    return { failures: by('chunkscribe_auth_failures_total'), lockouts: by('chunkscribe_auth_lockouts_total') };
  }

  it('counts each wrong credential by where it was checked, and the lockout it leads to; never a right one', async () => {
    expect(await counts()).toEqual({
      failures: { v1: 0, metrics: 0, health: 0 },
      lockouts: { v1: 0, metrics: 0, health: 0 },
    });
    // Right credentials and none at all are not failures.
    expect((await fetch(`${server.url}/v1/jobs`, { headers: bearer(KEY) })).status).toBe(200);
    expect((await fetch(`${server.url}/v1/jobs`)).status).toBe(401);
    expect((await fetch(`${server.url}/health`, { headers: bearer(KEY) })).status).toBe(200);

    expect((await fetch(`${server.url}/v1/jobs`, { headers: bearer('wrong-key-0123456789') })).status).toBe(401);
    expect(await counts()).toEqual({
      failures: { v1: 1, metrics: 0, health: 0 },
      lockouts: { v1: 0, metrics: 0, health: 0 },
    });
    const metrics = await fetch(`${server.url}/metrics`, { headers: bearer('wrong-token-0123456789') });
    await metrics.arrayBuffer();
    expect(metrics.status).toBe(401);
    // The third failure within the minute reaches the limit: the address is locked out.
    const guess = await fetch(`${server.url}/health`, { headers: bearer('guess-0123456789') });
    expect(((await guess.json()) as { view: string }).view).toBe('public');
    expect(await counts()).toEqual({
      failures: { v1: 1, metrics: 1, health: 1 },
      lockouts: { v1: 0, metrics: 0, health: 1 },
    });

    // Locked out, credentials are not checked: the refusals are neither failures nor new lockouts.
    for (const path of ['/v1/jobs', '/health', '/metrics']) {
      const res = await fetch(`${server.url}${path}`, { headers: bearer(KEY) });
      await res.arrayBuffer();
      expect(res.status, path).toBe(429);
    }
    expect(await counts()).toEqual({
      failures: { v1: 1, metrics: 1, health: 1 },
      lockouts: { v1: 0, metrics: 0, health: 1 },
    });
  });
});
