import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  removeDir,
  startServer,
  tempDataDir,
  upload,
  waitForJob,
  type TestServer,
} from '../helper.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/until.ts';
import { expectError, expectNothingLeft } from './hostile-kit.ts';

const speech = speechFixture();
const RETRY_AFTER_S = '13';

const transcriptions = (fake: FakeOpenAI) => fake.requests.filter((r) => r.path === '/v1/audio/transcriptions').length;

/**
 * An upload that declares far more than it sends and then sends nothing: it holds its slot as long as the test
 * keeps the socket (the pace checks are off).
 */
function heldUpload(server: TestServer): net.Socket {
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(
    'POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=held\r\n' +
      'Content-Length: 1000000\r\n\r\n' +
      '--held\r\nContent-Disposition: form-data; name="file"; filename="held.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n',
  );
  return socket;
}

const poolDetail = async (server: TestServer): Promise<string> =>
  (await getJson<{ components: Record<string, { detail: string }> }>(`${server.url}/health/ready`)).body.components
    .job_dirs!.detail;

describe('per-key upload limits and the circuit breaker, shared by two hosts on one Redis', () => {
  let redis: TestRedis;
  let fakes: FakeOpenAI[] = [];
  let servers: TestServer[] = [];
  const sockets: net.Socket[] = [];
  let dataDir: string | undefined;
  let prefixes = 0;

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(fakes.map((f) => f.close()));
    servers = [];
    fakes = [];
    if (dataDir) await removeDir(dataDir);
    dataDir = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** Two service instances on one Redis and one store, each with its own env on top of `env`. */
  async function twoHosts(
    env: Record<string, string>,
    own: [Record<string, string>, Record<string, string>] = [{}, {}],
  ): Promise<[TestServer, TestServer]> {
    const dir = (dataDir = await tempDataDir());
    const shared = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: `shared-limits-${++prefixes}`,
      PRESSURE_RETRY_AFTER_S: RETRY_AFTER_S,
      // A loaded test machine's event loop must not refuse uploads or readiness: what is tested is Redis.
      PRESSURE_EVENT_LOOP_DELAY_MS: '0',
      ...env,
    };
    const a = await startServer({ ...shared, ...own[0] }, dir);
    servers.push(a);
    const b = await startServer({ ...shared, ...own[1] }, dir);
    servers.push(b);
    return [a, b];
  }

  it('counts the uploads of one client on both hosts in one window: 429 RATE_LIMITED with Retry-After on either', async () => {
    const [a, b] = await twoHosts({ ROLE: 'api', UPLOAD_RATE_LIMIT_PER_MINUTE: '2' });
    expect((await upload(a.url, speech.mp3, { dry_run: 'true' })).status).toBe(200);
    expect((await upload(b.url, speech.mp3, { dry_run: 'true' })).status).toBe(200);
    for (const host of [a, b]) {
      const refused = await upload(host.url, speech.mp3, { dry_run: 'true' });
      expectError(refused, 429, 'RATE_LIMITED', { limit_per_minute: 2 });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      await expectNothingLeft(host);
    }
  });

  it("counts one client's uploads in progress on both hosts, and frees the slot on both when it ends", async () => {
    const [a, b] = await twoHosts({
      ROLE: 'api',
      UPLOADS_PER_KEY_MAX: '1',
      UPLOAD_MAX_GAP_MS: '0',
      UPLOAD_MIN_BYTES_PER_S: '0',
      UPLOAD_RATE_LIMIT_PER_MINUTE: '0',
    });
    sockets.push(heldUpload(a));
    await until(async () => (await poolDetail(a)).startsWith('1 of'), 'the held upload on host A to take its slot');

    const refused = await upload(b.url, speech.mp3, { dry_run: 'true' });
    expectError(refused, 429, 'RATE_LIMITED', { reason: 'concurrent_uploads', limit: 1 });
    expect(refused.headers.get('retry-after')).toBe(RETRY_AFTER_S);

    sockets.pop()?.destroy();
    // The slot is given back just after the lease (its upload's last step): poll with the upload itself.
    await until(
      async () => (await upload(b.url, speech.mp3, { dry_run: 'true' })).status === 200,
      "host B to take an upload once host A's has ended",
    );
    await expectNothingLeft(a);
    await expectNothingLeft(b);
  });

  it('refuses uploads with 503 SERVER_BUSY (resource redis) while Redis is down, keeps nothing, and takes them once it is back', async () => {
    // Host A is stopped by the shared rate count, host B (no rate limit) by the shared slots.
    const [a, b] = await twoHosts({ ROLE: 'api' }, [
      { UPLOAD_RATE_LIMIT_PER_MINUTE: '10' },
      { UPLOAD_RATE_LIMIT_PER_MINUTE: '0' },
    ]);
    await redis.kill();
    try {
      for (const host of [a, b]) {
        const refused = await upload(host.url, speech.mp3, { dry_run: 'true' });
        expectError(refused, 503, 'SERVER_BUSY', { resource: 'redis' });
        expect(refused.headers.get('retry-after')).toBe(RETRY_AFTER_S);
        expect(await jobFiles(host.dataDir)).toEqual([]);
        expect((await fetch(`${host.url}/health/live`)).status).toBe(200);
      }
    } finally {
      await redis.start();
    }
    for (const host of [a, b]) {
      await until(
        async () => (await upload(host.url, speech.mp3, { dry_run: 'true' })).status === 200,
        'an upload to be taken once Redis is back',
      );
      await expectNothingLeft(host);
    }
  });

  it("turns the other host's jobs away with PROVIDER_AUTH after one host got a 401, without it calling the provider", async () => {
    // Each host has its own fake provider, so the request counts say which host called; both answer 401.
    fakes = await Promise.all([startFakeOpenAI({ faults: () => 'auth' }), startFakeOpenAI({ faults: () => 'auth' })]);
    const provider = (fake: FakeOpenAI) => ({ OPENAI_API_KEY: FAKE_OPENAI_KEY, OPENAI_BASE_URL: fake.url });
    const hosts = await twoHosts({ TRANSCRIBE_CONCURRENCY: '1', MAX_CONCURRENT_JOBS: '1' }, [
      provider(fakes[0]!),
      provider(fakes[1]!),
    ]);
    const first = await upload(hosts[0].url, speech.mp3);
    expect(first.status).toBe(202);
    const failed = await waitForJob(hosts[0].url, first.body.id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'PROVIDER_AUTH' } });
    const calls = fakes.map(transcriptions);
    expect(calls.reduce((x, y) => x + y)).toBe(1);

    // The host that called stops, so the next job runs on the other one, which has not called its provider.
    const ran = calls[0] === 1 ? 0 : 1;
    const other = hosts[1 - ran]!;
    await hosts[ran]!.close();
    servers = servers.filter((s) => s !== hosts[ran]);
    const second = await upload(other.url, speech.mp3);
    expect(second.status).toBe(202);
    const turnedAway = await waitForJob(other.url, second.body.id);
    expect(turnedAway).toMatchObject({ status: 'failed', error: { code: 'PROVIDER_AUTH' } });
    expect(transcriptions(fakes[1 - ran]!)).toBe(0);
  });
});
