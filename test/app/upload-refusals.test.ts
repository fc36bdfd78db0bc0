import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, listenApp, removeDir, tempDataDir, upload } from '../helper.ts';
import { parsePromText, sumOf } from '../support/prom-text.ts';
import { until } from '../support/until.ts';
import { expectError } from './hostile-kit.ts';

const KEY = 'key-refusals-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const RATE_LIMIT = 6;

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  reason?: string;
}

describe('refused uploads: log level and chunkscribe_uploads_refused_total', () => {
  const speech = speechFixture();
  let fake: FakeOpenAI;
  let app: App;
  let url: string;
  let dataDir: string;
  const logs: string[] = [];

  beforeAll(async () => {
    // Transcription stalls: the one accepted job holds the only job directory lease until the server closes.
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    dataDir = await tempDataDir();
    const config = loadConfig({
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      API_KEYS: KEY,
      JOB_DIRS_MAX: '1',
      // The one key fills the pool on purpose here (SERVER_BUSY); the per-key job limit has its own test.
      JOBS_PER_KEY_MAX: '2',
      UPLOAD_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
      SHUTDOWN_TIMEOUT_MS: '100',
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    ({ app, url } = await listenApp(config, createLogger(config, sink)));
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
    await removeDir(dataDir);
  });

  it('logs SERVER_BUSY at warn, never error, and counts every refusal of POST /v1/jobs by code', async () => {
    // 1 to 2 of the key's uploads: refused by validation.
    expectError(
      await upload(url, new Blob([Buffer.from('plain text, not audio')]), {}, AUTH),
      415,
      'UNSUPPORTED_MEDIA',
    );
    expectError(await upload(url, speech.wav, { context: 'everything' }, AUTH), 400, 'INVALID_FIELD', {
      field: 'context',
    });
    // 3: accepted, and holds the pool's one lease.
    const live = await upload(url, speech.mp3, {}, AUTH);
    expect(live.status).toBe(202);
    await until(
      () => fake.requests.some((r) => r.path === '/v1/audio/transcriptions'),
      'the live job to reach the provider',
      { everyMs: 50 },
    );
    // 4 to 6: the pool is full.
    for (let i = 0; i < 3; i++)
      expectError(await upload(url, speech.mp3, {}, AUTH), 503, 'SERVER_BUSY', { resource: 'job_dirs_leases' });
    // 7: past the key's rate limit.
    expectError(await upload(url, speech.mp3, {}, AUTH), 429, 'RATE_LIMITED');
    // Without a key: refused before the limit counts it.
    expectError(await upload(url, speech.mp3, {}), 401, 'UNAUTHORIZED');
    // Other routes' errors are not upload refusals.
    expect((await getJson(`${url}/v1/jobs/job_${'A'.repeat(22)}`, AUTH)).status).toBe(404);
    expect((await getJson(`${url}/v1/jobs?cursor=nope!`, AUTH)).status).toBe(400);

    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    const samples = parsePromText(await res.text());
    const refused = samples.filter((s) => s.name === 'chunkscribe_uploads_refused_total');
    expect(Object.fromEntries(refused.map((s) => [s.labels.code, s.value]))).toEqual({
      UNSUPPORTED_MEDIA: 1,
      INVALID_FIELD: 1,
      SERVER_BUSY: 3,
      RATE_LIMITED: 1,
      UNAUTHORIZED: 1,
    });
    expect(sumOf(samples, 'chunkscribe_jobs_accepted_total')).toBe(1);

    const raw = logs.join('').trim().split('\n');
    // JSON.parse keeps the last of duplicate keys: the raw text shows a second "msg".
    for (const line of raw) expect(line.match(/"msg":/g), line).toHaveLength(1);
    const lines = raw.map((l) => JSON.parse(l) as LogLine);
    const busy = lines.filter((l) => l.code === 'SERVER_BUSY');
    expect(busy).toHaveLength(3);
    expect(
      busy.every(
        (l) =>
          l.level === 40 && l.msg === 'request refused' && l.reason?.startsWith('The server is handling as many jobs'),
      ),
    ).toBe(true);
    const rejected = lines.filter((l) => l.msg === 'request rejected');
    expect(rejected.map((l) => l.code).sort()).toEqual([
      'INVALID_FIELD',
      'INVALID_FIELD',
      'NOT_FOUND',
      'RATE_LIMITED',
      'UNAUTHORIZED',
      'UNSUPPORTED_MEDIA',
    ]);
    expect(rejected.every((l) => l.level === 30 && typeof l.reason === 'string' && l.reason.length > 10)).toBe(true);
    // Nothing in this run is a fault of the service.
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
