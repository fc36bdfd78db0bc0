import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, removeDir, startServer, tempDataDir, type Json, type TestServer } from '../helper.ts';
import { startPasswordRedis, type TestRedis } from '../support/redis-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';

const API_KEY = 'health-client-key-0123456789';
const METRICS_TOKEN = 'health-metrics-token-0123456789';
const REDIS_PASSWORD = 'redis-pass-0123456789';
const BASE_URL_SECRETS = ['base-user', 'base-pass-0123', 'query-secret-0123'];
/** Never contacted: the provider is local, the URL is only configured (and must never be shown whole). */
const OPENAI_BASE_URL = 'http://base-user:base-pass-0123@127.0.0.1:9/v1?api-key=query-secret-0123&region=eu';

type Health = Json & { status: string; components: Record<string, Record<string, unknown>>; config?: Json };

function expectStatusesOnly(body: Health, what: string): void {
  expect(Object.keys(body).sort(), what).toEqual(['components', 'status']);
  expect(Object.keys(body.components).length, what).toBeGreaterThanOrEqual(8);
  for (const [name, c] of Object.entries(body.components))
    expect(Object.keys(c), `${what}: ${name}`).toEqual(['status']);
}

describe('what /health and the start-up log show of the configuration (API keys, a metrics token, credentials in URLs)', () => {
  let redis: TestRedis;
  let service: ServiceProcess;
  let url: string;
  let dataDir: string;
  const secrets = [API_KEY, METRICS_TOKEN, REDIS_PASSWORD, ...BASE_URL_SECRETS];

  beforeAll(async () => {
    // The URL's password is the one that works.
    redis = await startPasswordRedis(REDIS_PASSWORD);
    dataDir = await tempDataDir();
    service = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      OPENAI_BASE_URL,
      REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0`,
      API_KEYS: API_KEY,
      METRICS_TOKEN,
    });
    url = await service.url;
  });
  afterAll(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    await redis?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  it('logs the configuration at start with every URL setting stripped of its user-info and query values', () => {
    const line = service.lines.find((l) => l.includes('"msg":"configuration"'));
    expect(line).toBeDefined();
    const config = (JSON.parse(line!) as { config: { openai: { baseURL: string }; redisUrl: string } }).config;
    expect(config.openai.baseURL).toBe('http://***@127.0.0.1:9/v1?api-key=***&region=***');
    expect(config.redisUrl).toBe(`redis://***@127.0.0.1:${redis.port}/0`);
    const log = service.lines.join('\n');
    for (const secret of secrets) expect(log, secret).not.toContain(secret);
  });

  it('answers statuses only without a valid key or token, on /health and /health/ready', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-0123456789' },
      { authorization: API_KEY },
      { authorization: METRICS_TOKEN },
    ];
    for (const headers of attempts) {
      for (const path of ['/health', '/health/ready']) {
        const res = await fetch(`${url}${path}`, { headers });
        const text = await res.text();
        const what = `${path} ${JSON.stringify(headers)}`;
        expect(res.status, what).toBe(200);
        expectStatusesOnly(JSON.parse(text) as Health, what);
        for (const leak of [dataDir, 'ffmpeg version', 'sqlite', 'GiB', '127.0.0.1', ...secrets])
          expect(text, `${what}: ${leak}`).not.toContain(leak);
      }
    }
    expect((await getJson(`${url}/health/live`)).body).toEqual({ status: 'ok' });
  });

  it('shows the details and the redacted configuration to an API key or the metrics token', async () => {
    for (const token of [API_KEY, METRICS_TOKEN]) {
      const res = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      const body = JSON.parse(text) as Health & {
        config: { dataDir: string; openai: { baseURL: string }; redisUrl: string; apiKeys: number };
      };
      expect(res.status).toBe(200);
      expect(body.config.dataDir).toBe(dataDir);
      expect(body.config.openai.baseURL).toBe('http://***@127.0.0.1:9/v1?api-key=***&region=***');
      expect(body.config.redisUrl).toBe(`redis://***@127.0.0.1:${redis.port}/0`);
      expect(body.config.apiKeys).toBe(1);
      expect(String(body.components.ffmpeg?.detail)).toMatch(/^ffmpeg version/);
      for (const secret of secrets) expect(text, secret).not.toContain(secret);

      const ready = await getJson<Health>(`${url}/health/ready`, { authorization: `Bearer ${token}` });
      expect(Object.values(ready.body.components).every((c) => typeof c.detail === 'string')).toBe(true);
      expect(ready.body.config).toBeUndefined();
    }
  });
});

describe('/health in open mode (no API keys)', () => {
  let open: TestServer;
  let withToken: TestServer;

  beforeAll(async () => {
    open = await startServer({ TRANSCRIBE_PROVIDER: 'local', OPENAI_BASE_URL });
    withToken = await startServer({ TRANSCRIBE_PROVIDER: 'local', OPENAI_BASE_URL, METRICS_TOKEN });
  });
  afterAll(async () => {
    for (const s of [open, withToken]) {
      await s?.close();
      if (s) await removeDir(s.dataDir);
    }
  });

  it('shows everything to anyone without METRICS_TOKEN (every route is open), URLs still without credentials', async () => {
    const res = await fetch(`${open.url}/health`);
    const text = await res.text();
    const body = JSON.parse(text) as Health & { config: { dataDir: string } };
    expect(body.config.dataDir).toBe(open.dataDir);
    expect(Object.values(body.components).every((c) => typeof c.detail === 'string')).toBe(true);
    for (const secret of BASE_URL_SECRETS) expect(text, secret).not.toContain(secret);
  });

  it('keeps the details and the configuration for the metrics token when one is set', async () => {
    for (const path of ['/health', '/health/ready']) {
      expectStatusesOnly((await getJson<Health>(`${withToken.url}${path}`)).body, path);
      expectStatusesOnly(
        (await getJson<Health>(`${withToken.url}${path}`, { authorization: 'Bearer not-the-token' })).body,
        path,
      );
    }
    const full = await getJson<Health & { config: { dataDir: string } }>(`${withToken.url}/health`, {
      authorization: `Bearer ${METRICS_TOKEN}`,
    });
    expect(full.body.config.dataDir).toBe(withToken.dataDir);
  });
});
