import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { loadConfig } from '../../src/config.ts';
import { ERROR_STATUS } from '../../src/errors.ts';
import { toJobResource } from '../../src/http/job-resource.ts';
import { createLogger } from '../../src/logger.ts';
import type { Services } from '../../src/http/services.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  listenApp,
  registeredRoutes,
  removeDir,
  tempDataDir,
  upload,
  waitForJob,
  type ErrorJson,
  type Json,
  type JobJson,
} from '../helper.ts';

const KEY_ALICE = 'alice-secret-key-0123456789';
const KEY_BOB = 'bob-secret-key-9876543210';
const WEBHOOK_SECRET = `whsec_${Buffer.from('w'.repeat(32)).toString('base64')}`;
const METRICS_TOKEN = 'metrics-token-abcdef0123';
const ALICE = { authorization: `Bearer ${KEY_ALICE}` };
const BOB = { authorization: `Bearer ${KEY_BOB}` };

interface Started {
  app: App;
  services: Services;
  url: string;
  dataDir: string;
  /** Every log line written so far, as JSON text. */
  logs: string[];
  close(): Promise<void>;
}

/** Like test/helper's startServer, but the test keeps the services (the store) and reads every log line. */
async function start(env: Record<string, string>): Promise<Started> {
  const dataDir = await tempDataDir();
  const config = loadConfig({
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'trace',
    CHUNK_SECONDS: '10',
    CHUNK_OVERLAP_SECONDS: '0',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const { app, services, url } = await listenApp(config, createLogger(config, sink));
  return { app, services, url, dataDir, logs, close: () => app.close() };
}

/** Fastify's `:id` is OpenAPI's `{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

describe('OpenAPI, API keys, rate limit and /health with API_KEYS_FILE', () => {
  let fake: FakeOpenAI;
  let server: Started;
  let keysFile: string;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 0 });
    const dir = await tempDataDir();
    keysFile = path.join(dir, 'keys');
    await writeFile(keysFile, `# name:key, one a line\nalice:${KEY_ALICE}\n\nbob:${KEY_BOB}\n`);
    server = await start({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      API_KEYS_FILE: keysFile,
      CHUNK_SECONDS: '4',
      RATE_LIMIT_RPM: '6000',
      UPLOAD_RATE_LIMIT_PER_MINUTE: '1000',
      WEBHOOK_SECRET,
      METRICS_TOKEN,
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
    await removeDir(path.dirname(keysFile));
  });

  it('documents every registered route and every error code at /docs/json, and serves the UI at /docs', async () => {
    const doc = await getJson<{
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, Json> }>>;
      components: { schemas: Record<string, { properties: { error: { properties: { code: { enum: string[] } } } } }> };
    }>(`${server.url}/docs/json`);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);

    // The UI's own routes and the upload page's static files are not part of the API.
    const apiRoutes = registeredRoutes(server.app).filter(
      (r) => !r.url.startsWith('/docs') && r.url !== '/' && !r.url.startsWith('/assets/') && !r.url.endsWith('.html'),
    );
    expect(apiRoutes.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining([
        'POST /v1/jobs',
        'GET /v1/jobs',
        'GET /v1/jobs/:id',
        'GET /v1/jobs/:id/transcript',
        'DELETE /v1/jobs/:id',
        'GET /health',
        'GET /health/ready',
        'GET /health/live',
      ]),
    );
    for (const route of apiRoutes) {
      const documented = doc.body.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      expect(documented, `${route.method} ${route.url} is in the document`).toBeDefined();
    }

    const codes = doc.body.components.schemas.ErrorBody?.properties.error.properties.code.enum;
    expect([...(codes ?? [])].sort()).toEqual(Object.keys(ERROR_STATUS).sort());
    const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    // The service's table only: the CLI's section has a table of its own codes and exit statuses.
    const errorSection = readme.slice(
      readme.indexOf('\n## Error codes'),
      readme.indexOf('\n## ', readme.indexOf('\n## Error codes') + 1),
    );
    const readmeCodes = [...errorSection.matchAll(/^\| `([A-Z_]+)` \| \d{3} \|/gm)].map((m) => m[1]);
    expect(readmeCodes.length).toBeGreaterThan(10);
    expect(codes).toEqual(expect.arrayContaining(readmeCodes));

    // Error answers are documented with the contract's body; the upload documents its form and its refusals.
    const postJobs = doc.body.paths['/v1/jobs']?.post as unknown as {
      requestBody: { content: Record<string, { schema: { properties: Record<string, Json> } }> };
      responses: Record<string, { content: Record<string, { schema: Json }> }>;
    };
    expect(Object.keys(postJobs.requestBody.content)).toEqual(['multipart/form-data']);
    expect(Object.keys(postJobs.requestBody.content['multipart/form-data']?.schema.properties ?? {})).toEqual(
      expect.arrayContaining([
        'file',
        'language',
        'prompt',
        'model',
        'metadata',
        'callback_url',
        'max_cost_usd',
        'dry_run',
      ]),
    );
    for (const status of ['400', '401', '413', '415', '422', '429', '503', '507']) {
      expect(JSON.stringify(postJobs.responses[status]?.content['application/json']?.schema), status).toContain(
        'ErrorBody',
      );
    }
    expect(JSON.stringify(doc.body.paths['/v1/jobs/{id}/transcript']?.get?.responses['409'])).toContain('ErrorBody');

    const ui = await fetch(`${server.url}/docs`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    expect(await ui.text()).toMatch(/swagger/i);
  });

  it('answers schema validation failures with 400 INVALID_FIELD naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['/v1/jobs?limit=0', 'limit'],
      ['/v1/jobs?limit=abc', 'limit'],
      ['/v1/jobs?status=done', 'status'],
      ['/v1/jobs/job_x/transcript?format=docx', 'format'],
      ['/v1/jobs/job_x/transcript?format=txt&partial=maybe', 'partial'],
    ];
    for (const [url, field] of cases) {
      const res = await getJson<ErrorJson>(`${server.url}${url}`, ALICE);
      expect(res.status, url).toBe(400);
      expect(res.body.error.code, url).toBe('INVALID_FIELD');
      expect(res.body.error.details?.field, url).toBe(field);
    }
  });

  it('serializes the full job resource, list items and transcript without dropping a field, and records the key name', async () => {
    const created = await upload(server.url, speech.wav, { metadata: '{"ref":"r1"}' }, ALICE);
    expect(created.status).toBe(202);
    expect(created.body.key_name).toBe('alice');
    const id = created.body.id;
    await waitForJob(server.url, id, ALICE);
    const { store } = server.services;

    const polled = await getJson<JobJson>(`${server.url}/v1/jobs/${id}`, ALICE);
    const job = await store.getJob(id);
    if (!job) throw new Error('job not stored');
    expect(job.keyName).toBe('alice');
    // Built from every stored row, results included: what a poll answers must be all of it.
    const expected = JSON.parse(JSON.stringify(toJobResource(job, await store.listChunks(id), Date.now()))) as Json;
    expect(polled.body).toEqual(expected);
    expect(Object.keys(polled.body.progress)).toEqual(
      expect.arrayContaining(['chunks_pending', 'chunks_sending', 'retrying', 'waiting', 'audio_s_done']),
    );

    const list = await getJson<{ items: Json[] }>(`${server.url}/v1/jobs?limit=100`, ALICE);
    expect(list.body.items.find((j) => j.id === id)).toEqual(expected);

    const transcript = await getJson<Json>(`${server.url}/v1/jobs/${id}/transcript`, ALICE);
    expect(transcript.status).toBe(200);
    expect(transcript.body).toEqual(JSON.parse(JSON.stringify(await store.getTranscript(id))));
    expect((transcript.body.segments as Json[]).length).toBeGreaterThan(0);

    // The store keeps the key's name and fingerprint, never the key.
    const files = (await readdir(server.dataDir, { recursive: true }))
      .map(String)
      .filter((f) => /\.(db|sqlite)(-wal)?$|jobs\.db/.test(f) || f.endsWith('-wal'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = await readFile(path.join(server.dataDir, f));
      expect(bytes.includes(KEY_ALICE), f).toBe(false);
    }
  });

  it('shows the effective config at /health to the metrics token, not to a key holder, without any secret', async () => {
    const tenant = await getJson<Json>(`${server.url}/health`, ALICE);
    expect([tenant.body.view, tenant.body.config]).toEqual(['tenant', undefined]);
    const res = await fetch(`${server.url}/health`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as { status: string; config: Json };
    expect(body.config.maxUploadBytes).toBe(server.services.config.maxUploadBytes);
    expect(body.config.apiKeys).toBe(2);
    expect(text).not.toContain('alice');
    expect(body.config.uploadRateLimitPerMinute).toBe(1000);
    for (const secret of [FAKE_OPENAI_KEY, KEY_ALICE, KEY_BOB, WEBHOOK_SECRET, METRICS_TOKEN])
      expect(text).not.toContain(secret);
    // The readiness report is still there for dashboards.
    expect(Object.keys((body as unknown as { components: Json }).components)).toContain('store');
  });

  it('never writes a key to the log, with the Authorization header redacted wherever it is logged', async () => {
    expect((await getJson(`${server.url}/v1/jobs`, ALICE)).status).toBe(200);
    await getJson(`${server.url}/v1/jobs`, { authorization: 'Bearer wrong-key-5555555555' });
    await upload(server.url, new Blob([Buffer.from('not audio at all')]), {}, BOB);
    // A handler logging a whole request's headers must not leak the key either.
    server.app.log.info(
      { req: { headers: { authorization: `Bearer ${KEY_ALICE}` } }, headers: { authorization: `Bearer ${KEY_BOB}` } },
      'headers',
    );
    const text = server.logs.join('');
    expect(text).toContain('"headers"');
    expect(text).toContain('[redacted]');
    for (const secret of [KEY_ALICE, KEY_BOB, 'wrong-key-5555555555', FAKE_OPENAI_KEY, WEBHOOK_SECRET])
      expect(text).not.toContain(secret);
    expect(text).not.toMatch(/OPEN to anyone/);
    // One info line per request, naming it; Fastify's "incoming request" line is kept at debug only, and so is
    // the line of a read that succeeded (polls).
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; url?: string; statusCode?: number });
    const completed = lines.filter((l) => l.msg === 'request completed');
    expect(completed.some((l) => l.level === 30 && l.url === '/v1/jobs' && l.statusCode === 401)).toBe(true);
    expect(completed.some((l) => l.level === 30 && l.url === '/v1/jobs' && l.statusCode === 415)).toBe(true);
    const reads = completed.filter((l) => l.statusCode === 200);
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((l) => l.level === 20)).toBe(true);
    expect(lines.filter((l) => l.msg === 'incoming request').every((l) => l.level === 20)).toBe(true);
  });
});

describe('the upload rate limit', () => {
  let keyed: Started;
  let open: Started;
  const notAudio = () => new Blob([Buffer.from('plain text, not audio')]);

  beforeAll(async () => {
    keyed = await start({
      TRANSCRIBE_PROVIDER: 'local',
      API_KEYS: `${KEY_ALICE},${KEY_BOB}`,
      UPLOAD_RATE_LIMIT_PER_MINUTE: '2',
    });
    open = await start({ TRANSCRIBE_PROVIDER: 'local', UPLOAD_RATE_LIMIT_PER_MINUTE: '2' });
  });
  afterAll(async () => {
    for (const s of [keyed, open]) {
      await s?.close();
      if (s) await removeDir(s.dataDir);
    }
  });

  it('answers 429 RATE_LIMITED with Retry-After per API key, and leaves other keys and other routes alone', async () => {
    for (let i = 0; i < 2; i++) expect((await upload(keyed.url, notAudio(), {}, ALICE)).status).toBe(415);
    const limited = await upload(keyed.url, notAudio(), {}, ALICE);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(limited.body.error.details).toEqual({ limit_per_minute: 2 });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(keyed.logs.join('')).toContain('upload rate limited');
    // Another key has its own budget; polling is not limited.
    expect((await upload(keyed.url, notAudio(), {}, BOB)).status).toBe(415);
    for (let i = 0; i < 5; i++) expect((await getJson(`${keyed.url}/v1/jobs`, ALICE)).status).toBe(200);
    // A request without a valid key is refused as unauthorized, not counted.
    expect((await upload(keyed.url, notAudio(), {})).status).toBe(401);
  });

  it('counts per client address in open mode, and says at start that the API is open', async () => {
    for (let i = 0; i < 2; i++) expect((await upload(open.url, notAudio())).status).toBe(415);
    const limited = await upload(open.url, notAudio());
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    // Open to this machine only (OPEN_MODE_CLIENTS=loopback), which the warning says.
    expect(
      open.logs.some((l) => l.includes('"level":40') && l.includes('OPEN to clients on this machine (loopback) only')),
    ).toBe(true);
    expect((await fetch(`${open.url}/health/live`)).status).toBe(200);
  });
});
