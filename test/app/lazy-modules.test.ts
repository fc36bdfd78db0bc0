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
const LAZY = { openai: '/node_modules/openai/', pg: '/node_modules/pg/' };

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
});
