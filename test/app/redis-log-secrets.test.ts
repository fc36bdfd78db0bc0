import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDataDir } from '../helper.ts';
import { startPasswordRedis, type TestRedis } from '../support/redis-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';

const REDIS_PASSWORD = 'redis-right-pass-0123456789';
const WRONG_PASSWORD = 'wrong-SECRET-0123456789';

describe('a Redis that refuses the password in REDIS_URL', () => {
  let redis: TestRedis;
  let service: ServiceProcess;
  let dataDir: string;

  beforeAll(async () => {
    redis = await startPasswordRedis(REDIS_PASSWORD);
    dataDir = await tempDataDir();
    service = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      REDIS_URL: `redis://default:${WRONG_PASSWORD}@127.0.0.1:${redis.port}/0`,
    });
  });
  afterAll(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    await redis?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  it('logs the refusal of the real service process without the password ioredis puts on its errors', async () => {
    // The refusals are logged as errors, each carrying the failed AUTH/HELLO command.
    const refusals = () => service.lines.filter((l) => l.includes('WRONGPASS'));
    await until(
      () => refusals().length >= 3,
      () => `three WRONGPASS errors in the service's log (${service.lines.length} lines so far)`,
      {
        timeoutMs: 30_000,
        everyMs: 50,
      },
    );
    const log = service.lines.join('\n');
    expect(log).not.toContain(WRONG_PASSWORD);
    expect(log).not.toContain(REDIS_PASSWORD);
    // The lines still say which command failed.
    expect(refusals().some((l) => /"command":\{"name":"(hello|auth)","args":"\[redacted\]"\}/.test(l))).toBe(true);
  });
});
