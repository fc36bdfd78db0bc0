import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HEALTH_REUSE_MS } from '../../src/http/health-report.ts';
import { getJson, removeDir, startServer, type TestServer } from '../helper.ts';
import { manualClock } from '../support/manual-clock.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { S3RVER_CREDENTIALS, s3Env, startTestS3, type TestS3 } from '../support/s3-server.ts';

const BUCKET = 'health-reuse-bucket';
const METRICS_TOKEN = 'health-reuse-token-0123456789';

type Ready = { status: string; components: Record<string, { status: string }> };

/**
 * The real service in scale-out mode (Redis) with its uploads in a bucket (s3rver), its health clock a manual one:
 * what each /health request costs the bucket and Redis, counted where they answer.
 */
describe('/health asks the store, Redis and the bucket at most once per HEALTH_REUSE_MS', () => {
  const clock = manualClock(1_000_000);
  let redis: TestRedis;
  let s3: TestS3;
  let counter: Redis;
  let server: TestServer;

  /** HeadBucket requests the bucket has been sent (path style: HEAD /<bucket>). */
  const headBuckets = () =>
    s3.requests.filter(
      (r) => r.method === 'HEAD' && new URL(r.url, 'http://s3').pathname.replace(/\/$/, '') === `/${BUCKET}`,
    ).length;
  /** PING commands Redis has run, from its own statistics. */
  const pings = async () => Number(/cmdstat_ping:calls=(\d+)/.exec(await counter.info('commandstats'))?.[1] ?? 0);
  const ready = (headers: Record<string, string> = {}) => getJson<Ready>(`${server.url}/health/ready`, headers);

  beforeAll(async () => {
    [redis, s3] = await Promise.all([startTestRedis(), startTestS3(BUCKET)]);
    // The AWS SDK reads them from the environment (its default chain), as in production.
    for (const [name, value] of Object.entries(S3RVER_CREDENTIALS)) vi.stubEnv(name, value);
    counter = new Redis(redis.url, { lazyConnect: true });
    await counter.connect();
    server = await startServer(
      {
        TRANSCRIBE_PROVIDER: 'local',
        REDIS_URL: redis.url,
        ...s3Env(s3),
        METRICS_TOKEN,
      },
      undefined,
      { healthNow: clock.now },
    );
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
    counter?.disconnect();
    await redis?.stop();
    await s3?.close();
    vi.unstubAllEnvs();
  });

  it('answers requests one after another from one round of checks, and checks again once that is older', async () => {
    const [heads, pinged] = [headBuckets(), await pings()];
    const views: Array<Record<string, string>> = [{}, { authorization: `Bearer ${METRICS_TOKEN}` }];
    for (let i = 0; i < 20; i++) {
      const path = i % 2 === 0 ? '/health/ready' : '/health';
      const res = await getJson<Ready>(`${server.url}${path}`, views[i % 2]);
      expect(res.status, `${path} #${i}`).toBe(200);
      expect(res.body.components.object_store?.status, `${path} #${i}`).toBe('ok');
      expect(res.body.components.redis?.status, `${path} #${i}`).toBe('ok');
    }
    expect(headBuckets() - heads).toBe(1);
    expect((await pings()) - pinged).toBe(1);

    clock.advance(HEALTH_REUSE_MS - 1);
    expect((await ready()).status).toBe(200);
    expect(headBuckets() - heads).toBe(1);
    clock.advance(1);
    expect((await ready()).status).toBe(200);
    expect(headBuckets() - heads).toBe(2);
    expect((await pings()) - pinged).toBe(2);
  });

  it('sees a bucket that stops answering, and its recovery, within HEALTH_REUSE_MS', async () => {
    clock.advance(HEALTH_REUSE_MS);
    expect((await ready()).body.components.object_store?.status).toBe('ok');
    s3.failWhen((r) => r.method === 'HEAD');
    try {
      // The answer of a moment ago still stands, without asking the bucket.
      const before = headBuckets();
      expect((await ready()).status).toBe(200);
      expect(headBuckets()).toBe(before);
      clock.advance(HEALTH_REUSE_MS);
      const down = await ready();
      expect(down.status).toBe(503);
      expect(down.body.components.object_store?.status).toBe('down');
      expect(headBuckets()).toBeGreaterThan(before);
      // A failing answer is reused as long: requests in the next second do not ask the bucket again.
      const whileDown = headBuckets();
      for (let i = 0; i < 5; i++) expect((await ready()).status).toBe(503);
      expect(headBuckets()).toBe(whileDown);
    } finally {
      s3.failWhen(null);
    }
    expect((await ready()).status).toBe(503);
    clock.advance(HEALTH_REUSE_MS);
    const back = await ready();
    expect(back.status).toBe(200);
    expect(back.body.components.object_store?.status).toBe('ok');
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });
});
