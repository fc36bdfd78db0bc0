import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HEALTH_VIEWS, READY_VIEWS } from '../../src/http/health-schemas.ts';
import { getJson, removeDir, startServer, type TestServer } from '../helper.ts';

const API_KEY = 'serializers-key-0123456789';
const METRICS_TOKEN = 'serializers-token-0123456789';

/** What the app's serializers were asked to do, noted on the way. */
const seen = vi.hoisted(() => ({
  /** Answers serialized with a route's own serializer (its response schema), by "METHOD url status". */
  routeAnswers: new Set<string>(),
  /** Every schema a branch serializer was compiled from, as compiled, by "url". */
  branchSchemas: [] as Array<{ url: string; schema: unknown }>,
}));

vi.mock('../../src/http/lazy-serializers.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/http/lazy-serializers.ts')>();
  const { notingFactory, notingLazySerializers } = await import('../support/noting-serializers.ts');
  return {
    ...real,
    lazySerializers: notingLazySerializers(real, (route, serialize) => (doc: unknown) => {
      seen.routeAnswers.add(`${route.method} ${route.url} ${String(route.httpStatus)}`);
      return serialize(doc);
    }),
    branchSerializers: (url: string, branches: Record<string, object>, build = real.fastifyDefaultSerializers()) =>
      real.branchSerializers(
        url,
        branches,
        notingFactory(build, (route) => void seen.branchSchemas.push({ url: route.url, schema: route.schema })),
      ),
  };
});

describe("/health's answers are serialized with their view's schema, never the union's", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', API_KEYS: API_KEY, METRICS_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
  });

  it('answers each view on both routes without compiling or running the union (no anyOf)', async () => {
    const credentials: Array<[string, Record<string, string>]> = [
      ['public', {}],
      ['tenant', { authorization: `Bearer ${API_KEY}` }],
      ['operator', { authorization: `Bearer ${METRICS_TOKEN}` }],
    ];
    for (const path of ['/health', '/health/ready']) {
      for (const [view, headers] of credentials) {
        const res = await fetch(`${server.url}${path}`, { headers });
        expect(res.status, `${path} ${view}`).toBe(200);
        expect(res.headers.get('content-type'), `${path} ${view}`).toBe('application/json; charset=utf-8');
        const body = (await res.json()) as { view: string; config?: unknown };
        expect(body.view, `${path} ${view}`).toBe(view);
        expect(body.config !== undefined, `${path} ${view}`).toBe(path === '/health' && view === 'operator');
      }
    }
    expect([...seen.routeAnswers].filter((a) => a.includes('/health'))).toEqual([]);
    expect(seen.branchSchemas.map((s) => s.url).sort()).toEqual([
      ...Array(3).fill('/health'),
      ...Array(3).fill('/health/ready'),
    ]);
    for (const { url, schema } of seen.branchSchemas) expect(JSON.stringify(schema), url).not.toContain('anyOf');
    // The other routes still answer through their own serializers.
    expect((await getJson(`${server.url}/v1/jobs`, { authorization: `Bearer ${API_KEY}` })).status).toBe(200);
    expect(seen.routeAnswers).toContain('GET /v1/jobs 200');
  });
});

describe("a view's serializer drops what the view does not name", () => {
  const report = {
    status: 'ok',
    components: { store: { status: 'ok', reason: 'unreachable', detail: '/srv/data/jobs.sqlite', extra: 1 } },
    config: { dataDir: '/srv/data' },
    not_in_the_schema: 'must not be sent',
  };

  it('public: the statuses only; tenant: no detail; operator on /health/ready: no configuration', async () => {
    const { branchSerializers } = await vi.importActual<typeof import('../../src/http/lazy-serializers.ts')>(
      '../../src/http/lazy-serializers.ts',
    );
    const ready = branchSerializers('/health/ready', READY_VIEWS);
    const health = branchSerializers('/health', HEALTH_VIEWS);
    expect(JSON.parse(ready('public')({ view: 'public', ...report }))).toEqual({
      view: 'public',
      status: 'ok',
      components: { store: { status: 'ok' } },
    });
    expect(JSON.parse(health('tenant')({ view: 'tenant', ...report }))).toEqual({
      view: 'tenant',
      status: 'ok',
      components: { store: { status: 'ok', reason: 'unreachable' } },
    });
    expect(JSON.parse(ready('operator')({ view: 'operator', ...report }))).toEqual({
      view: 'operator',
      status: 'ok',
      components: { store: { status: 'ok', reason: 'unreachable', detail: '/srv/data/jobs.sqlite' } },
    });
    expect(JSON.parse(health('operator')({ view: 'operator', ...report })).config).toEqual({ dataDir: '/srv/data' });
  });
});
