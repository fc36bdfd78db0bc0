import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, removeDir, startServer, tempDataDir } from '../helper.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';

type Ready = { status: string; components: Record<string, { status: string; detail: string }> };

/** Polls /health/ready until `redis` has the wanted status (the client notices a dead socket on its own time). */
async function readyWhenRedis(url: string, status: 'ok' | 'down'): Promise<{ status: number; body: Ready }> {
  let res: { status: number; body: Ready } | undefined;
  await until(
    async () => {
      res = await getJson<Ready>(`${url}/health/ready`);
      return res.body.components.redis?.status === status;
    },
    () => `/health/ready to report redis ${status}: ${JSON.stringify(res?.body)}`,
    { timeoutMs: 20_000, everyMs: 50 },
  );
  if (!res) throw new Error('/health/ready was never read');
  return res;
}

describe('/health/ready in scale-out mode', () => {
  let redis: TestRedis;
  let dataDir: string;
  let service: ServiceProcess;
  let url: string;

  beforeAll(async () => {
    redis = await startTestRedis();
    dataDir = await tempDataDir();
    // The real process, not an in-process app: its shutdown after the Redis restart is what afterAll checks, and a
    // hang there must not be able to hold the test worker.
    // A password in the URL, so the test can check it never reaches the unauthenticated answer.
    service = spawnService({
      DATA_DIR: dataDir,
      REDIS_URL: redis.url.replace('redis://', 'redis://:hunter2-secret@'),
      TRANSCRIBE_PROVIDER: 'local',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    url = await service.url;
  });
  afterAll(async () => {
    // After a Redis restart the close once hung (stop 14): BullMQ's disconnect() waited for an 'end' that ioredis
    // never emits for a client between reconnect attempts (fixed in closeWithin, test/integration/bounded-close-
    // redis.test.ts). The guard stays: a hang is reported with the service's last log lines and the process killed.
    if (service) {
      service.child.kill('SIGTERM');
      const exited = await Promise.race([service.exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!exited) {
        process.stderr.write(
          `scale-health: the service did not exit within 20 s of SIGTERM after the Redis restart; last lines:\n${service.lines.slice(-15).join('\n')}\n`,
        );
        await service.kill9();
      }
    }
    await redis?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  it('reports Redis as a component: ok while it answers, down (503) while it is dead, ok again when it is back', async () => {
    const up = await readyWhenRedis(url, 'ok');
    expect(up.status).toBe(200);
    expect(up.body.components.redis).toEqual({ status: 'ok', detail: 'redis answers' });

    await redis.kill();
    const down = await readyWhenRedis(url, 'down');
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('down');
    expect(down.body.components.redis?.detail).toMatch(
      /^redis (connection \w+|did not answer PING within \d+ ms|PING failed)$/,
    );
    expect(JSON.stringify(down.body)).not.toContain('hunter2');
    expect(JSON.stringify(down.body)).not.toContain(String(redis.port));
    // /health and liveness still answer.
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    expect((await getJson<Ready>(`${url}/health`)).body.components.redis?.status).toBe('down');

    await redis.start();
    const back = await readyWhenRedis(url, 'ok');
    expect(back.status).toBe(200);
  });
});

describe('/health/ready in the single-process mode', () => {
  it('has no redis component', async () => {
    const server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
    try {
      const res = await getJson<Ready>(`${server.url}/health/ready`);
      expect(Object.keys(res.body.components)).not.toContain('redis');
    } finally {
      await server.close();
      await removeDir(server.dataDir);
    }
  });
});
