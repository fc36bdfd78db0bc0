import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, tempDataDir, upload } from '../helper.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';

const RECORDER = path.resolve(import.meta.dirname, '../support/import-recorder.ts');

/** What an idle service must not hold: modules only some requests need, loaded by the first of them. */
const LAZY = {
  openai: '/node_modules/openai/',
  pg: '/node_modules/pg/',
  zod: '/node_modules/zod/',
  swagger: '/node_modules/@fastify/swagger/',
  swaggerUi: '/node_modules/@fastify/swagger-ui/',
  static: '/node_modules/@fastify/static/',
};
/**
 * What it must not load at all: the HTTP schemas' builder (its types only; src/http/json-schema.ts builds them),
 * and Node's bundled undici, which an ESM import of node:http loads (its lazy WebSocket exports) before the
 * first request that needs it (the openai SDK's fetch).
 */
const NEVER = { typebox: '/node_modules/typebox/', undici: 'builtin:NativeModule internal/deps/undici/undici' };

describe('modules loaded on first use', () => {
  let fake: FakeOpenAI;
  let dataDir: string;
  let logDir: string;
  let importLog: string;
  let service: ServiceProcess;
  let url: string;

  const loaded = async (fragment: string): Promise<boolean> =>
    (await readFile(importLog, 'utf8')).split('\n').some((u) => u.includes(fragment));

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    dataDir = await tempDataDir();
    logDir = await mkdtemp(path.join(os.tmpdir(), 'cs-imports-'));
    importLog = path.join(logDir, 'imports.txt');
    service = spawnService(
      {
        DATA_DIR: dataDir,
        TRANSCRIBE_PROVIDER: 'openai',
        OPENAI_API_KEY: FAKE_OPENAI_KEY,
        OPENAI_BASE_URL: fake.url,
        IMPORT_LOG: importLog,
      },
      ['--import', RECORDER],
    );
    url = await service.url;
  });

  afterAll(async () => {
    service.child.kill('SIGTERM');
    await service.exited;
    await fake.close();
    await removeDir(dataDir);
    await rm(logDir, { recursive: true, force: true });
  });

  it("starts without Node's bundled undici (no ESM import of node:http)", async () => {
    service.child.kill('SIGWINCH');
    await until(() => loaded('builtin:'), 'the recorder to list the built-in modules');
    expect(await loaded('builtin:NativeModule internal/http')).toBe(true);
    expect(await loaded(NEVER.undici)).toBe(false);
  });

  it('starts without the openai SDK, checks the provider without it, and loads it when an upload begins', async () => {
    // The recorder saw the service's own modules: the log is the import graph, not an empty file.
    expect(await loaded('/src/http/app.ts')).toBe(true);
    // The check asked at start has been answered, and the SDK is still not loaded.
    await until(() => fake.requests.some((r) => r.path === '/v1/models' && r.status === 200), 'the check at start', {
      timeoutMs: 10_000,
    });
    const ready = await getJson<{ components: Record<string, { status: string }> }>(`${url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body.components.provider?.status).toBe('ok');
    expect(await loaded(LAZY.openai)).toBe(false);

    // A dry run sends no chunk: only the upload's beginning can have loaded it.
    const dry = await upload(url, speechFixture().mp3, { dry_run: 'true' });
    expect(dry.status).toBe(200);
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
    await until(() => loaded(LAZY.openai), 'the SDK loaded once an upload began', { timeoutMs: 10_000 });
  });

  it('starts on SQLite without the PostgreSQL driver', async () => {
    expect(await loaded('/src/http/app.ts')).toBe(true);
    expect(await loaded(LAZY.pg)).toBe(false);
  });

  it('reads its config without zod (wanted only for a backends declaration)', async () => {
    expect(await loaded('/src/config.ts')).toBe(true);
    expect(await loaded(LAZY.zod)).toBe(false);
  });

  // Before the docs: Swagger UI brings @fastify/static too.
  it('serves the upload page through @fastify/static loaded on its first request', async () => {
    expect(await loaded(LAZY.static)).toBe(false);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<html');
    expect(await loaded(LAZY.static)).toBe(true);
  });

  it('builds the OpenAPI document and Swagger UI on the first request for them', async () => {
    expect(await loaded(LAZY.swagger)).toBe(false);
    expect(await loaded(LAZY.swaggerUi)).toBe(false);
    const doc = await getJson<{ openapi: string; paths: Record<string, unknown> }>(`${url}/docs/json`);
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toContain('/v1/jobs');
    expect(await loaded(LAZY.swagger)).toBe(true);
    const ui = await fetch(`${url}/docs/static/index.html`, { redirect: 'manual' });
    expect(ui.status).toBe(302);
    expect(await loaded(LAZY.swaggerUi)).toBe(true);
    // What the document app does not serve is the service's own 404, in the service's error shape.
    const missing = await getJson<{ error: { code: string } }>(`${url}/docs/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
  });

  it('builds the HTTP schemas without loading TypeBox', async () => {
    expect(await loaded('/src/http/schemas.ts')).toBe(true);
    expect(await loaded(NEVER.typebox)).toBe(false);
  });
});
