import { existsSync } from 'node:fs';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/http/app.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { nodeReadings, type SystemReadings } from '../../src/resources/system-monitor.ts';
import type { Services } from '../../src/http/services.ts';
import { createServices } from '../../src/service/wiring.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, tempDataDir, upload, waitForJob, type ErrorJson } from '../helper.ts';
import { spawnService } from '../support/service-process.ts';
import { until } from '../support/until.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface Ready {
  status: string;
  components: Record<string, { status: string; detail: string }>;
}

/** The real app in this process, with disk readings the test sets (a machine's free space cannot be set on demand). */
async function startWithReadings(env: Record<string, string>, readings: SystemReadings) {
  const dataDir = await tempDataDir();
  const config = loadConfig({
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  const logger = pino({ level: config.logLevel });
  const services: Services = await createServices(config, logger, { readings });
  const app: App = await buildApp({ services, logger });
  await services.start();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { app, services, dataDir, url: `http://127.0.0.1:${address.port}` };
}

describe('pressure', () => {
  const speech = speechFixture();
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('refuses uploads under disk pressure, cleans up under critical pressure without touching a live job, and recovers', async () => {
    const fake = await startFakeOpenAI({ latencyMs: 20 });
    cleanups.push(() => fake.close());
    let freeBytes = 50 * GiB;
    const readings: SystemReadings = {
      disk: async () => ({ freeBytes, totalBytes: 100 * GiB }),
      memory: nodeReadings.memory,
    };
    const s = await startWithReadings(
      {
        OPENAI_API_KEY: FAKE_OPENAI_KEY,
        OPENAI_BASE_URL: fake.url,
        CHUNK_SECONDS: '4',
        RATE_LIMIT_RPM: '6000',
        PRESSURE_SAMPLE_MS: '20',
        PRESSURE_RETRY_AFTER_S: '17',
        UPLOAD_RETENTION_HOURS: '1',
        // The live job's request is abandoned at the end, as it never gets an answer in time.
        SHUTDOWN_TIMEOUT_MS: '200',
      },
      readings,
    );
    cleanups.push(
      () => removeDir(s.dataDir),
      () => s.app.close(),
    );
    const level = () => s.services.pressure.level();

    const done = await upload(s.url, speech.mp3);
    expect((await waitForJob(s.url, done.body.id)).status).toBe('completed');
    const retainedUpload = s.services.dirs.uploadPath(done.body.id);
    expect(existsSync(retainedUpload)).toBe(true);

    fake.setLatency(60_000);
    const live = await upload(s.url, speech.mp3);
    expect(live.status).toBe(202);
    await until(
      () => fake.requests.some((r) => r.path === '/v1/audio/transcriptions'),
      'the live job to reach the provider',
    );

    freeBytes = 1 * GiB;
    await until(() => level() === 'elevated', 'elevated pressure');
    const busy = await upload(s.url, speech.mp3);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('17');
    expect((busy.body as unknown as ErrorJson).error).toMatchObject({
      code: 'SERVER_BUSY',
      details: { resource: 'disk', level: 'elevated' },
    });
    expect((await getJson(`${s.url}/v1/jobs/${live.body.id}`)).status).toBe(200);
    expect((await fetch(`${s.url}/v1/jobs/${done.body.id}/transcript?format=txt`)).status).toBe(200);
    const degraded = await getJson<Ready>(`${s.url}/health/ready`);
    expect(degraded.status).toBe(200);
    expect(degraded.body.components.disk!.status).toBe('degraded');
    expect(existsSync(retainedUpload)).toBe(true);

    freeBytes = 100 * MiB;
    await until(() => level() === 'critical', 'critical pressure');
    await s.services.pressure.idle();
    const down = await getJson<Ready>(`${s.url}/health/ready`);
    expect(down.status).toBe(503);
    expect(down.body.components.disk!.status).toBe('down');
    expect((await getJson(`${s.url}/health`)).status).toBe(200);
    expect(existsSync(retainedUpload)).toBe(false);
    expect(existsSync(s.services.dirs.uploadPath(live.body.id))).toBe(true);
    expect((await getJson<{ status: string }>(`${s.url}/v1/jobs/${live.body.id}`)).body.status).toBe('processing');

    freeBytes = 50 * GiB;
    await until(() => level() === 'normal', 'the pressure to pass');
    expect((await getJson(`${s.url}/health/ready`)).status).toBe(200);
    fake.setLatency(20);
    const after = await upload(s.url, speech.mp3);
    expect(after.status).toBe(202);
    expect((await waitForJob(s.url, after.body.id)).status).toBe('completed');
  });

  it('refuses uploads while the event loop lags and takes them again when it catches up', async () => {
    const s = await startWithReadings({ PRESSURE_EVENT_LOOP_DELAY_MS: '30', PRESSURE_SAMPLE_MS: '1000' }, nodeReadings);
    cleanups.push(
      () => removeDir(s.dataDir),
      () => s.app.close(),
    );
    const lag = () => s.app.memoryUsage().eventLoopDelay;
    // Blocks this process's event loop (which the in-process server shares) in slices until a sample shows the lag.
    const deadline = Date.now() + 30_000;
    while (lag() <= 30) {
      if (Date.now() > deadline) throw new Error('the lag was never measured');
      const until200 = Date.now() + 200;
      while (Date.now() < until200) {
        // busy
      }
      await new Promise((r) => setImmediate(r));
    }
    const busy = await upload(s.url, speech.mp3, { dry_run: 'true' });
    expect(busy.status).toBe(503);
    expect((busy.body as unknown as ErrorJson).error).toMatchObject({
      code: 'SERVER_BUSY',
      details: { resource: 'event_loop' },
    });
    expect(busy.headers.get('retry-after')).toBe('30');
    expect((await getJson(`${s.url}/v1/jobs`)).status).toBe(200);
    await until(() => lag() <= 30, 'the lag to pass');
    expect((await upload(s.url, speech.mp3, { dry_run: 'true' })).status).toBe(200);
  });

  it('takes its thresholds from the environment in the real process: elevated refuses uploads, critical fails readiness', async () => {
    const run = async (env: Record<string, string>) => {
      const dataDir = await tempDataDir();
      cleanups.push(() => removeDir(dataDir));
      const proc = spawnService({ DATA_DIR: dataDir, ...env });
      cleanups.push(() => proc.kill9());
      const url = await proc.url;
      return { url, stop: async () => (proc.child.kill('SIGTERM'), await proc.exited) };
    };
    const above = String(Number.MAX_SAFE_INTEGER);

    const elevated = await run({
      PRESSURE_DISK_FREE_ELEVATED_BYTES: above,
      PRESSURE_DISK_FREE_CRITICAL_BYTES: '0',
      PRESSURE_RETRY_AFTER_S: '9',
    });
    const busy = await upload(elevated.url, speech.wav);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('9');
    expect((busy.body as unknown as ErrorJson).error.code).toBe('SERVER_BUSY');
    expect((await getJson(`${elevated.url}/v1/jobs`)).status).toBe(200);
    expect((await getJson(`${elevated.url}/health/ready`)).status).toBe(200);
    await elevated.stop();

    const critical = await run({ PRESSURE_DISK_FREE_ELEVATED_BYTES: above, PRESSURE_DISK_FREE_CRITICAL_BYTES: above });
    expect((await getJson(`${critical.url}/health/ready`)).status).toBe(503);
    expect((await getJson(`${critical.url}/health/live`)).status).toBe(200);
    expect((await upload(critical.url, speech.wav)).status).toBe(503);
    await critical.stop();
  });

  it('names both variables when a critical threshold is not beyond the elevated one', () => {
    expect(() =>
      loadConfig({ PRESSURE_DISK_FREE_ELEVATED_BYTES: '100', PRESSURE_DISK_FREE_CRITICAL_BYTES: '200' }),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ PRESSURE_RSS_ELEVATED_BYTES: '200', PRESSURE_RSS_CRITICAL_BYTES: '100' })).toThrow(
      /PRESSURE_RSS_CRITICAL_BYTES: must be higher than or equal to PRESSURE_RSS_ELEVATED_BYTES/,
    );
  });
});
