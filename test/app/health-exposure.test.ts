import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_REASONS } from '../../src/resources/component-check.ts';
import { getJson, removeDir, startServer, tempDataDir, type Json, type TestServer } from '../helper.ts';
import { startPasswordRedis, type TestRedis } from '../support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3, type TestS3 } from '../support/s3-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';

const API_KEY = 'health-client-key-0123456789';
const METRICS_TOKEN = 'health-metrics-token-0123456789';
const REDIS_PASSWORD = 'redis-pass-0123456789';
const BUCKET = 'health-exposure-bucket';
const BASE_URL_SECRETS = ['base-user', 'base-pass-0123', 'query-secret-0123'];
/** Never contacted: the provider is local, the URL is only configured (and must never be shown whole). */
const OPENAI_BASE_URL = 'http://base-user:base-pass-0123@127.0.0.1:9/v1?api-key=query-secret-0123&region=eu';
const LOAD_FIELDS = ['jobs_running', 'jobs_waiting', 'requests_in_flight', 'requests_waiting'];

type Viewer = 'public' | 'tenant' | 'operator';
type Health = Json & { view: Viewer; status: string; components: Record<string, Json>; config?: Json };

/**
 * The exact shape of a view: its top-level fields, the components, and each component's fields (a status; for a
 * tenant and the operator a reason code exactly when it is not ok (job_dirs: when full) and the queue's four
 * counts; for the operator a detail; on /health the operator's configuration).
 */
function expectView(body: Health, viewer: Viewer, path: string, components: string[], what: string): void {
  expect(body.view, what).toBe(viewer);
  const top = viewer === 'operator' && path === '/health' ? ['config'] : [];
  expect(Object.keys(body).sort(), what).toEqual(['components', ...top, 'status', 'view']);
  expect(Object.keys(body.components).sort(), what).toEqual([...components].sort());
  for (const [name, c] of Object.entries(body.components)) {
    const fields = ['status'];
    if (viewer !== 'public') {
      if (c.status !== 'ok' || (name === 'job_dirs' && 'reason' in c)) fields.push('reason');
      if (name === 'queue') fields.push('load');
    }
    if (viewer === 'operator') fields.push('detail');
    expect(Object.keys(c).sort(), `${what}: ${name}`).toEqual(fields.sort());
    if ('reason' in c) expect(HEALTH_REASONS, `${what}: ${name}`).toContain(c.reason);
    if ('detail' in c) expect(typeof c.detail, `${what}: ${name}`).toBe('string');
    if ('load' in c) {
      expect(Object.keys(c.load as Json).sort(), what).toEqual(LOAD_FIELDS);
      for (const n of Object.values(c.load as Json)) expect(Number.isInteger(n), what).toBe(true);
    }
  }
}

const read = async (url: string, headers: Record<string, string>): Promise<{ status: number; text: string }> => {
  const res = await fetch(url, { headers });
  return { status: res.status, text: await res.text() };
};

describe('what /health and the start-up log show, by credential (API key, metrics token, Redis, a bucket)', () => {
  let redis: TestRedis;
  let s3: TestS3;
  let service: ServiceProcess;
  let url: string;
  let dataDir: string;
  const secrets = [
    API_KEY,
    METRICS_TOKEN,
    REDIS_PASSWORD,
    S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
    ...BASE_URL_SECRETS,
  ];
  const components = [
    'disk',
    'ffmpeg',
    'ffprobe',
    'job_dirs',
    'memory',
    'object_store',
    'provider',
    'queue',
    'redis',
    'store',
  ];
  /** What names the operator's infrastructure: only the operator's view may hold any of it. */
  const infrastructure = (): string[] => [
    dataDir,
    BUCKET,
    s3.endpoint,
    `:${redis.port}`,
    '127.0.0.1',
    'ffmpeg version',
    'sqlite',
    'GiB',
    'MiB',
  ];

  beforeAll(async () => {
    // The URL's password is the one that works.
    [redis, s3] = await Promise.all([startPasswordRedis(REDIS_PASSWORD), startTestS3(BUCKET)]);
    dataDir = await tempDataDir();
    service = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      OPENAI_BASE_URL,
      REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0`,
      ...s3Env(s3),
      ...S3RVER_CREDENTIALS,
      API_KEYS: API_KEY,
      METRICS_TOKEN,
    });
    url = await service.url;
  });
  afterAll(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    await redis?.stop();
    await s3?.close();
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

  it('answers each credential with its view on /health and /health/ready: the infrastructure only to the token', async () => {
    const attempts: Array<[string, Record<string, string>, Viewer]> = [
      ['no credential', {}, 'public'],
      ['a wrong token', { authorization: 'Bearer wrong-0123456789' }, 'public'],
      ['the key without Bearer', { authorization: API_KEY }, 'public'],
      ['the token without Bearer', { authorization: METRICS_TOKEN }, 'public'],
      ['a tenant key', { authorization: `Bearer ${API_KEY}` }, 'tenant'],
      ['the metrics token', { authorization: `Bearer ${METRICS_TOKEN}` }, 'operator'],
    ];
    for (const [who, headers, viewer] of attempts) {
      for (const path of ['/health', '/health/ready']) {
        const what = `${path}, ${who}`;
        const { status, text } = await read(`${url}${path}`, headers);
        expect(status, what).toBe(200);
        expectView(JSON.parse(text) as Health, viewer, path, components, what);
        for (const secret of secrets) expect(text, `${what}: ${secret}`).not.toContain(secret);
        if (viewer !== 'operator')
          for (const leak of infrastructure()) expect(text, `${what}: ${leak}`).not.toContain(leak);
      }
    }
    expect((await getJson(`${url}/health/live`)).body).toEqual({ status: 'ok' });
  });

  it("refuses a tenant's key where the metrics token is asked for", async () => {
    const metrics = await read(`${url}/metrics`, { authorization: `Bearer ${API_KEY}` });
    expect(metrics.status).toBe(401);
    expect((JSON.parse(metrics.text) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    expect((await read(`${url}/metrics`, { authorization: `Bearer ${METRICS_TOKEN}` })).status).toBe(200);
  });

  it('shows the operator the details and the redacted configuration, never a secret', async () => {
    const auth = { authorization: `Bearer ${METRICS_TOKEN}` };
    const { text } = await read(`${url}/health`, auth);
    const body = JSON.parse(text) as Health & {
      config: { dataDir: string; openai: { baseURL: string }; redisUrl: string; apiKeys: number };
    };
    expect(body.config.dataDir).toBe(dataDir);
    expect(body.config.openai.baseURL).toBe('http://***@127.0.0.1:9/v1?api-key=***&region=***');
    expect(body.config.redisUrl).toBe(`redis://***@127.0.0.1:${redis.port}/0`);
    expect(body.config.apiKeys).toBe(1);
    expect(String(body.components.ffmpeg?.detail)).toMatch(/^ffmpeg version/);
    expect(String(body.components.object_store?.detail)).toContain(BUCKET);
    for (const secret of secrets) expect(text, secret).not.toContain(secret);
  });
});

describe('/health in open mode (no API keys)', () => {
  let open: TestServer;
  let withToken: TestServer;
  const components = ['disk', 'ffmpeg', 'ffprobe', 'job_dirs', 'memory', 'provider', 'queue', 'store'];

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

  it("shows the operator's view to anyone without METRICS_TOKEN (every route is open), URLs still without credentials", async () => {
    for (const path of ['/health', '/health/ready']) {
      const { text } = await read(`${open.url}${path}`, {});
      const body = JSON.parse(text) as Health & { config?: { dataDir: string } };
      expectView(body, 'operator', path, components, `open ${path}`);
      if (path === '/health') expect(body.config?.dataDir).toBe(open.dataDir);
      for (const secret of BASE_URL_SECRETS) expect(text, secret).not.toContain(secret);
    }
  });

  it("with METRICS_TOKEN: the operator's view to the token, a tenant's to anyone else (anyone may use /v1)", async () => {
    for (const path of ['/health', '/health/ready']) {
      for (const headers of [{}, { authorization: 'Bearer not-the-token' }] as Array<Record<string, string>>) {
        const { text } = await read(`${withToken.url}${path}`, headers);
        expectView(JSON.parse(text) as Health, 'tenant', path, components, `${path} ${JSON.stringify(headers)}`);
        for (const leak of [withToken.dataDir, 'ffmpeg version', 'GiB']) expect(text).not.toContain(leak);
      }
      const full = await getJson<Health & { config?: { dataDir: string } }>(`${withToken.url}${path}`, {
        authorization: `Bearer ${METRICS_TOKEN}`,
      });
      expectView(full.body, 'operator', path, components, `${path} with the token`);
      if (path === '/health') expect(full.body.config?.dataDir).toBe(withToken.dataDir);
    }
  });
});
