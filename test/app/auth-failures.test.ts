import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, startServer, type TestServer } from '../helper.ts';

const KEY = 'lockout-client-key-0123456789';
const METRICS_TOKEN = 'lockout-metrics-token-0123456789';
const LIMIT = 3;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function call(
  server: TestServer,
  path: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  code: string | undefined;
  reason: string | undefined;
  retryAfter: string | null;
  view: string | undefined;
}> {
  const res = await fetch(`${server.url}${path}`, { headers });
  const body = (await res.json()) as { error?: { code: string; details?: { reason?: string } }; view?: string };
  const { code, details } = body.error ?? {};
  return {
    status: res.status,
    code,
    reason: details?.reason,
    retryAfter: res.headers.get('retry-after'),
    view: body.view,
  };
}

/** Each case its own server: every request comes from 127.0.0.1, one address, counted by that server alone. */
describe('failed credentials per client address (AUTH_FAILURES_PER_MINUTE)', () => {
  const servers: TestServer[] = [];
  const start = async (limit: number) => {
    const server = await startServer({
      API_KEYS: KEY,
      METRICS_TOKEN,
      AUTH_FAILURES_PER_MINUTE: String(limit),
    });
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    for (const s of servers) {
      await s.close();
      await removeDir(s.dataDir);
    }
  });

  const expectLocked = (answer: Awaited<ReturnType<typeof call>>, what: string) => {
    expect(answer.status, what).toBe(429);
    expect(answer.code, what).toBe('RATE_LIMITED');
    expect(answer.reason, what).toBe('auth_failures');
    const after = Number(answer.retryAfter);
    expect(Number.isInteger(after) && after >= 1 && after <= 60, `${what}: Retry-After ${answer.retryAfter}`).toBe(
      true,
    );
  };

  it('answers 401 to each wrong key up to the limit, then 429 even to the right key and the metrics token', async () => {
    const server = await start(LIMIT);
    for (let i = 0; i < LIMIT; i++) {
      const answer = await call(server, '/v1/jobs', bearer(`wrong-key-${i}-0123456789`));
      expect(answer.status, `wrong key ${i}`).toBe(401);
      expect(answer.code, `wrong key ${i}`).toBe('UNAUTHORIZED');
    }
    expectLocked(await call(server, '/v1/jobs', bearer(KEY)), 'the right key');
    expectLocked(await call(server, '/health', bearer(METRICS_TOKEN)), 'the metrics token on /health');
    expectLocked(await call(server, '/v1/jobs', bearer('wrong-key-again-0123456789')), 'another wrong key');
    // The OpenAI-compatible routes answer it in OpenAI's shape, which its SDKs read as a rate limit.
    const models = await fetch(`${server.url}/v1/models`, { headers: bearer(KEY) });
    expect(models.status).toBe(429);
    expect(models.headers.get('retry-after')).not.toBeNull();
    expect(((await models.json()) as { error: { type: string; code: string } }).error).toMatchObject({
      type: 'rate_limit_error',
      code: 'rate_limited',
    });
    // Without a credential nothing is guessed: the probes answer, /v1 says a key is missing.
    expect((await call(server, '/health/live')).status).toBe(200);
    const ready = await call(server, '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.view).toBe('public');
    expect((await call(server, '/v1/jobs')).code).toBe('UNAUTHORIZED');
  });

  it('does not count requests without a credential, nor the right credentials', async () => {
    const server = await start(LIMIT);
    for (let i = 0; i < LIMIT * 3; i++) {
      expect((await call(server, '/v1/jobs')).status).toBe(401);
      expect((await call(server, '/health/ready')).status).toBe(200);
      expect((await call(server, '/health', bearer(KEY))).view).toBe('tenant');
      expect((await call(server, '/health', bearer(METRICS_TOKEN))).view).toBe('operator');
    }
    expect((await call(server, '/v1/jobs', bearer(KEY))).status).toBe(200);
  });

  it('counts a wrong bearer on /health and a wrong token on /metrics', async () => {
    const server = await start(LIMIT);
    expect((await call(server, '/health', bearer('guess-0-0123456789'))).view).toBe('public');
    expect((await call(server, '/health/ready', bearer('guess-1-0123456789'))).view).toBe('public');
    const metrics = await fetch(`${server.url}/metrics`, { headers: bearer('guess-2-0123456789') });
    await metrics.arrayBuffer();
    expect(metrics.status).toBe(401);
    expectLocked(await call(server, '/health', bearer(METRICS_TOKEN)), 'the metrics token after three guesses');
    const locked = await fetch(`${server.url}/metrics`, { headers: bearer(METRICS_TOKEN) });
    await locked.arrayBuffer();
    expect(locked.status).toBe(429);
    expect((await call(server, '/health/ready')).status).toBe(200);
  });

  it('counts by the client address TRUST_PROXY names, so one client behind the proxy does not lock out another', async () => {
    const server = await startServer({
      API_KEYS: KEY,
      METRICS_TOKEN,
      AUTH_FAILURES_PER_MINUTE: String(LIMIT),
      TRUST_PROXY: '127.0.0.1',
    });
    servers.push(server);
    const from = (address: string, token: string) => ({ ...bearer(token), 'x-forwarded-for': address });
    for (let i = 0; i < LIMIT; i++) {
      expect((await call(server, '/v1/jobs', from('198.18.0.1', `wrong-key-${i}-0123456789`))).status).toBe(401);
    }
    expectLocked(await call(server, '/v1/jobs', from('198.18.0.1', KEY)), 'the guessing client');
    expect((await call(server, '/v1/jobs', from('198.18.0.2', KEY))).status).toBe(200);
    expect((await call(server, '/v1/jobs', bearer(KEY))).status).toBe(200);
    // An IPv6 client is its /64: a new address of the same block per guess buys no more guesses.
    for (let i = 0; i < LIMIT; i++) {
      const address = `2001:db8:1:2::${(i + 1).toString(16)}`;
      expect((await call(server, '/v1/jobs', from(address, `wrong-key-${i}-0123456789`))).status).toBe(401);
    }
    expectLocked(await call(server, '/v1/jobs', from('2001:db8:1:2:ffff::1', KEY)), 'another address of that /64');
    expect((await call(server, '/v1/jobs', from('2001:db8:1:3::1', KEY))).status).toBe(200);
  });

  it('never locks anyone out with the setting 0', async () => {
    const server = await start(0);
    for (let i = 0; i < LIMIT * 3; i++) {
      expect((await call(server, '/v1/jobs', bearer(`wrong-key-${i}-0123456789`))).status).toBe(401);
    }
    expect((await call(server, '/v1/jobs', bearer(KEY))).status).toBe(200);
    expect((await call(server, '/health', bearer(METRICS_TOKEN))).view).toBe('operator');
  });
});
