import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authFailures } from '../../src/http/auth-failures.ts';
import auth, { publicRoutes } from '../../src/http/plugins/auth.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  removeDir,
  startServer,
  upload,
  waitForJob,
  type ErrorJson,
  type TestServer,
} from '../helper.ts';
import { rawRequest, type RawReply } from '../support/raw-http.ts';

const KEY_A = 'routing-key-a-0123456789';
const KEY_B = 'routing-key-b-0123456789';
const A = { authorization: `Bearer ${KEY_A}` };
const B = { authorization: `Bearer ${KEY_B}` };
/** Well-formed, never issued: what authenticated probes ask for, so that none of them touches a real job. */
const NO_SUCH_JOB = 'job_0000000000000000000000';
/** What an unauthenticated request may send instead of a key. */
const NOT_A_KEY: Array<Record<string, string>> = [
  {},
  { authorization: 'Bearer wrong-key-0123456789' },
  { authorization: KEY_A },
];

type OpenApiDoc = { paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>> };

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
const encodeAt = (s: string, i: number, lower = false) =>
  s.slice(0, i) + (lower ? pct(s[i]!).toLowerCase() : pct(s[i]!)) + s.slice(i + 1);
const firstAlnum = (s: string) => s.search(/[A-Za-z0-9]/);
const lastAlnum = (s: string) =>
  s.length -
  1 -
  [...s]
    .reverse()
    .join('')
    .search(/[A-Za-z0-9]/);

/**
 * The ways one path can be written: percent escapes of letters and digits in every segment, case changes,
 * doubled slashes, dot segments (plain and escaped), a trailing slash, `;` parameters, a query, an encoded
 * slash, and absolute-form request lines.
 */
function spellings(segments: string[], origin: string): string[] {
  const join = (segs: string[]) => `/${segs.join('/')}`;
  const canonical = join(segments);
  const out = new Set<string>([canonical]);
  segments.forEach((seg, i) => {
    const with_ = (s: string) => join(segments.map((x, j) => (j === i ? s : x)));
    out.add(with_(encodeAt(seg, firstAlnum(seg))));
    out.add(with_(encodeAt(seg, lastAlnum(seg))));
    out.add(with_(encodeAt(seg, firstAlnum(seg), true)));
    out.add(with_(seg.replace(/[A-Za-z0-9]/g, pct)));
    out.add(with_(seg.toUpperCase()));
    out.add(with_(seg[0]!.toUpperCase() + seg.slice(1)));
    out.add(join([...segments.slice(0, i + 1), '.', ...segments.slice(i + 1)]));
    out.add(join([...segments.slice(0, i + 1), '%2e', ...segments.slice(i + 1)]));
    out.add(join([...segments.slice(0, i + 1), '..', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i + 1), '%2E%2E', ...segments.slice(i)]));
    out.add(join([...segments.slice(0, i), 'x', '..', ...segments.slice(i)]));
  });
  const everyChar = join(segments.map((s) => s.replace(/[A-Za-z0-9]/g, pct)));
  out.add(everyChar);
  out.add(join(segments.map((s) => s.toUpperCase())));
  out.add(`/${segments.join('//')}`);
  out.add(`//${segments.join('//')}//`);
  out.add(`/.${canonical}`);
  out.add(`${canonical}/`);
  out.add(`${canonical};x=1`);
  out.add(`${canonical}?x=1`);
  out.add(`/${segments.join('%2F')}`);
  out.add(`${origin}${canonical}`);
  out.add(`${origin}${everyChar}`);
  out.add(`http://other.invalid${canonical}`);
  out.add(`HTTP://${origin.slice('http://'.length)}${canonical}`);
  return [...out];
}

/** A router miss: the app's own 404 for a path no route matches (as opposed to a route's 404 for a job). */
function isRouterMiss(reply: RawReply): boolean {
  if (reply.status !== 404) return false;
  const body = JSON.parse(reply.body) as ErrorJson;
  return body.error.code === 'NOT_FOUND' && body.error.message.startsWith('No route');
}

/** The service's own 401, or on the OpenAI-compatible routes OpenAI's (code invalid_api_key). */
function isUnauthorized(reply: RawReply): boolean {
  if (reply.status !== 401) return false;
  if (reply.body === '') return true;
  const { code } = (JSON.parse(reply.body) as ErrorJson).error;
  return code === 'UNAUTHORIZED' || code === 'invalid_api_key';
}

describe('API keys whatever spelling of the path reaches a route', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let jobId: string;
  let doc: OpenApiDoc;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 0 });
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      API_KEYS: `${KEY_A},${KEY_B}`,
      CHUNK_SECONDS: '30',
      RATE_LIMIT_RPM: '6000',
    });
    const created = await upload(server.url, speech.wav, {}, A);
    expect(created.status).toBe(202);
    jobId = created.body.id;
    expect((await waitForJob(server.url, jobId, A)).status).toBe('completed');
    doc = (await getJson<OpenApiDoc>(`${server.url}/docs/json`)).body;
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
  });

  it('marks every /v1 operation of the OpenAPI document as needing the key, and nothing else', () => {
    // Secured: every alternative names a credential ({} would be "none", as public routes with optional credentials say).
    const secured = (security: Array<Record<string, string[]>> | undefined) =>
      !!security?.length && security.every((r) => Object.keys(r).length > 0);
    const ops = Object.entries(doc.paths).flatMap(([p, methods]) =>
      Object.entries(methods).map(([m, op]) => ({ p, m, secured: secured(op.security) })),
    );
    expect(ops.filter((o) => o.p.startsWith('/v1/')).length).toBeGreaterThanOrEqual(5);
    for (const o of ops) expect(o.secured, `${o.m} ${o.p}`).toBe(/^\/v1\//i.test(o.p));
  });

  it('answers 401 to every route of the document without a valid key, however the path is written, and leaves the job alone', async () => {
    const routed: string[] = [];
    /** Every answer that is not what it must be, so that one run lists them all. */
    const wrong: string[] = [];
    let probes = 0;
    for (const [template, methods] of Object.entries(doc.paths)) {
      if (!/^\/v1\//.test(template)) continue;
      const segs = (id: string) =>
        template
          .slice(1)
          .split('/')
          .map((s) => (s === '{id}' ? id : s));
      const probeTargets = spellings(segs(NO_SUCH_JOB), server.url);
      const realTargets = spellings(segs(jobId), server.url);
      const verbs = [...new Set([...Object.keys(methods).map((m) => m.toUpperCase()), 'HEAD', 'OPTIONS'])];
      for (let s = 0; s < probeTargets.length; s++) {
        // Routing does not depend on which job id is asked for: the keyed probe, on a job that does not exist,
        // says whether this spelling reaches a route; the unkeyed requests then ask for the real job.
        const getProbe = methods.get
          ? await rawRequest(server.url, { method: 'GET', target: probeTargets[s]!, headers: A })
          : null;
        for (const method of verbs) {
          const what = `${method} ${realTargets[s]}`;
          const probe =
            method === 'GET'
              ? getProbe!
              : await rawRequest(server.url, { method, target: probeTargets[s]!, headers: A });
          expect(probe.status, `keyed ${method} ${probeTargets[s]}`).not.toBe(401);
          // A HEAD answer has no body: it reaches a route exactly when the GET of the same spelling does.
          const reachesRoute = method === 'HEAD' ? getProbe !== null && !isRouterMiss(getProbe) : !isRouterMiss(probe);
          if (reachesRoute) routed.push(`${method} ${probeTargets[s]}`);
          for (const headers of NOT_A_KEY) {
            const reply = await rawRequest(server.url, { method, target: realTargets[s]!, headers });
            probes++;
            // A path no route takes is the router's 404 whatever is sent: it cannot tell a job apart either.
            const right = reachesRoute
              ? isUnauthorized(reply)
              : reply.status === 404 && (method === 'HEAD' || isRouterMiss(reply));
            if (!right)
              wrong.push(`${what} ${JSON.stringify(headers)} -> ${reply.status} (must be ${reachesRoute ? 401 : 404})`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(probes).toBeGreaterThan(500);
    // The spellings of the report reached a route (so the sweep above did exercise them), and were refused.
    const v1 = `${server.url}/v1/jobs`;
    expect(routed).toEqual(
      expect.arrayContaining([
        'POST /%761/jobs',
        'GET /v%31/jobs',
        'GET /%76%31/jobs',
        `GET ${v1}`,
        `DELETE /v1/jobs/${pct('j')}${NO_SUCH_JOB.slice(1)}`,
        'HEAD /v1/jobs',
      ]),
    );

    // Nothing was created or deleted; the job is still its owner's, and the server still serves.
    expect((await jobFiles(server.dataDir)).filter((f) => !f.startsWith(jobId))).toEqual([]);
    const listA = await getJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/jobs`, A);
    expect(listA.body.items.map((j) => j.id)).toEqual([jobId]);
    expect((await getJson(`${server.url}/v1/jobs/${jobId}`, A)).status).toBe(200);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });

  it('does not tell a job apart from one that never existed, without a key or with another key', async () => {
    for (const suffix of ['', '/transcript']) {
      const [mine, none] = await Promise.all([
        rawRequest(server.url, { method: 'GET', target: `/v1/jobs/${jobId}${suffix}` }),
        rawRequest(server.url, { method: 'GET', target: `/v1/jobs/${NO_SUCH_JOB}${suffix}` }),
      ]);
      expect(isUnauthorized(mine), suffix).toBe(true);
      expect(mine.body).toBe(none.body);
      const other = await getJson<ErrorJson>(`${server.url}/v1/jobs/${jobId}${suffix}`, B);
      const never = await getJson<ErrorJson>(`${server.url}/v1/jobs/${NO_SUCH_JOB}${suffix}`, B);
      expect([other.status, other.body.error.code]).toEqual([404, 'NOT_FOUND']);
      expect(other.body.error.message.replace(jobId, 'ID')).toBe(never.body.error.message.replace(NO_SUCH_JOB, 'ID'));
    }
    const deleted = await rawRequest(server.url, { method: 'DELETE', target: `/v1/jobs/${jobId}`, headers: B });
    expect(deleted.status).toBe(404);
    expect((await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs`, B)).body.items).toEqual([]);
    expect((await getJson(`${server.url}/v1/jobs/${jobId}`, A)).status).toBe(200);
  });
});

describe('route registration', () => {
  const keys = [{ name: 'k', key: 'registration-key-0123456789' }];
  const ok = async () => ({ ok: true });
  const failures = authFailures({ perMinute: 0, now: Date.now });

  it('protects a route unless it was registered as public, whatever its path', async () => {
    const app = Fastify();
    try {
      await app.register(auth, { apiKeys: keys, openModeClients: 'loopback', failures });
      app.get('/anything', ok);
      await app.register(async (child) => {
        child.get('/nested/v2', ok);
      });
      await app.register(
        publicRoutes(async (pub: FastifyInstance) => {
          pub.get('/open', ok);
        }),
      );
      for (const url of ['/anything', '/nested/v2']) {
        expect((await app.inject({ url })).statusCode, url).toBe(401);
        expect((await app.inject({ method: 'HEAD', url })).statusCode, url).toBe(401);
        expect((await app.inject({ url, headers: { authorization: `Bearer ${keys[0]!.key}` } })).statusCode, url).toBe(
          200,
        );
      }
      expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'HEAD', url: '/open' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/nowhere' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('refuses at start to register a /v1 route as public', async () => {
    for (const url of ['/v1/peek', '/V1/peek', '/v1']) {
      const app = Fastify();
      await app.register(auth, { apiKeys: [], openModeClients: 'loopback', failures });
      await expect(
        app.register(
          publicRoutes(async (pub: FastifyInstance) => {
            pub.get(url, ok);
          }),
        ),
        url,
      ).rejects.toThrow(/\/v1/);
      await app.close().catch(() => undefined);
    }
  });
});
