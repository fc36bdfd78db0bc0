import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadSlots } from '../../src/resources/upload-limits.ts';
import { connectFailFast } from '../../src/scale/shared-redis.ts';
import { createSharedUploadCounter, createSharedUploadSlots } from '../../src/scale/shared-upload-limits.ts';
import { manualClock, type ManualClock } from '../support/manual-clock.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { startTcpRelay, type TcpRelay } from '../support/tcp-relay.ts';
import { until } from '../support/until.ts';
import { refusal } from '../support/refusal.ts';

const logger = pino({ level: 'silent' });
const BOUNDS = { maxPerHolder: 2, maxBytesPerHolder: 1_000, retryAfterS: 7 };
const TTL_MS = 30_000;
const START = 1_700_000_000_000;

const uploadsRefused = {
  code: 'RATE_LIMITED',
  status: 429,
  retry: 7,
  details: { reason: 'concurrent_uploads', limit: 2 },
};
const bytesRefused = {
  code: 'RATE_LIMITED',
  status: 429,
  retry: 7,
  details: { reason: 'concurrent_upload_bytes', limit_bytes: 1_000 },
};
const redisDown = { code: 'SERVER_BUSY', status: 503, retry: 7, details: { resource: 'redis' } };

describe('upload limits per key shared by every host through Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const relays: TcpRelay[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    for (const r of relays) await r.close();
    await redis.stop();
  });

  /** One host's view: its own connection and clock, on the shared Redis and prefix. */
  async function host(prefix: string, clock: ManualClock): Promise<{ slots: UploadSlots; client: Redis }> {
    const client = await connectFailFast(redis.url, logger);
    clients.push(client);
    return { client, slots: createSharedUploadSlots({ client, prefix, logger, clock, slotTtlMs: TTL_MS, ...BOUNDS }) };
  }

  async function twoHosts() {
    const prefix = `t${++prefixes}`;
    const clockA = manualClock(START);
    const clockB = manualClock(START);
    return { prefix, clockA, clockB, a: await host(prefix, clockA), b: await host(prefix, clockB) };
  }

  it('counts the slots of one key across hosts, per key, and gives them back', async () => {
    const { a, b } = await twoHosts();
    const first = await a.slots.take('key:k', null);
    await b.slots.take('key:k', null);
    expect(await refusal(a.slots.take('key:k', null))).toEqual(uploadsRefused);
    expect(await refusal(b.slots.take('key:k', null))).toEqual(uploadsRefused);
    // Another key is not affected.
    await (await b.slots.take('key:other', null)).release();
    await first.release();
    await first.release();
    await b.slots.take('key:k', null);
    expect(await refusal(a.slots.take('key:k', null))).toEqual(uploadsRefused);
  });

  it("bounds the bytes one key's uploads reserve across hosts, declared or grown, and keeps a refused growth as it was", async () => {
    const { a, b } = await twoHosts();
    const declared = await a.slots.take('key:k', 600);
    expect(await refusal(b.slots.take('key:k', 401))).toEqual(bytesRefused);
    const chunked = await b.slots.take('key:k', null);
    await chunked.grow(300);
    // 400 fits exactly (the step ahead does not): granted, and then nothing more.
    await chunked.grow(400);
    expect(await refusal(chunked.grow(401))).toEqual(bytesRefused);
    expect(await refusal(a.slots.take('key:other-holder-is-free', 1_000))).toBe('not refused');
    await declared.release();
    // 400 held by the chunked upload: 600 fit again, 601 do not.
    expect(await refusal(a.slots.take('key:k', 601))).toEqual(bytesRefused);
    await a.slots.take('key:k', 600);
  });

  it('drops the slot of a host that died once its expiry passes, and keeps a live one refreshed', async () => {
    const { a, b, clockA, clockB, prefix } = await twoHosts();
    // Host A dies holding one slot: its connection is cut, so it can neither refresh nor give it back.
    await a.slots.take('key:k', 100);
    a.client.disconnect();
    const live = await b.slots.take('key:k', 100);
    expect(await refusal(b.slots.take('key:k', null))).toEqual(uploadsRefused);

    // B's own upload stays held past the first expiry because B refreshes it every third of the TTL.
    const refreshed = START + TTL_MS / 3 + TTL_MS;
    const probe = new Redis(redis.url);
    clients.push(probe);
    const ids = `${prefix}:upload-slots:{key:k}:ids`;
    expect(await probe.zcard(ids)).toBe(2);
    clockB.advance(TTL_MS / 3);
    await until(
      async () => (await probe.zrangebyscore(ids, refreshed, refreshed)).length === 1,
      "B's refresh of its live slot",
    );
    clockA.advance(TTL_MS / 3);

    // Past A's expiry (and before B's): A's slot is gone, B's is kept, so B has one slot free, not two.
    clockB.advance(TTL_MS - TTL_MS / 3 + 1);
    await b.slots.take('key:k', null);
    expect(await refusal(b.slots.take('key:k', null))).toEqual(uploadsRefused);
    await live.release();
  });

  it('refuses with 503 SERVER_BUSY (resource redis) and Retry-After while Redis is down, and counts again once it is back', async () => {
    const { a } = await twoHosts();
    const counter = createSharedUploadCounter({ client: a.client, prefix: 'rate', retryAfterS: 7, logger });
    expect(await counter.incr('key:k', 60_000)).toEqual({ current: 1, ttlMs: expect.any(Number) as number });
    const held = await a.slots.take('key:k', 10);
    await redis.kill();
    try {
      expect(await refusal(a.slots.take('key:k', null))).toEqual(redisDown);
      expect(await refusal(held.grow(100_000))).toEqual(redisDown);
      expect(await refusal(counter.incr('key:k', 60_000))).toEqual(redisDown);
      // Giving back never throws: the slot expires instead.
      await held.release();
    } finally {
      await redis.start();
    }
    await until(() => a.client.status === 'ready', 'the connection to come back');
    // The refused count was not counted later: the window has the first upload and this one.
    expect((await counter.incr('key:k', 60_000)).current).toBe(2);
  });

  it('gives back the slot of a take refused because its answer came after the command timeout', async () => {
    const { prefix, clockA, a } = await twoHosts();
    await a.slots.take('key:k', null);
    // Host B's connection is held past its 1 s timeout: the take is refused, then reaches Redis after all.
    const relay = await startTcpRelay(redis.port);
    relays.push(relay);
    const client = await connectFailFast(`redis://127.0.0.1:${relay.port}`, logger);
    clients.push(client);
    const b = createSharedUploadSlots({ client, prefix, logger, clock: clockA, slotTtlMs: TTL_MS, ...BOUNDS });
    relay.hold();
    expect(await refusal(b.take('key:k', null))).toEqual(redisDown);
    relay.release();
    // Nobody holds that take's slot: the key's second slot is free (asked on the same connection, so after it).
    await b.take('key:k', null);
    expect(await refusal(a.slots.take('key:k', null))).toEqual(uploadsRefused);
  });
});
