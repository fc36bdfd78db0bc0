import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCircuitBus, type CircuitBus } from '../../src/scale/shared-circuit.ts';
import { connectFailFast } from '../../src/scale/shared-redis.ts';
import { createCircuitBreaker, type CircuitBreaker } from '../../src/transcribe/circuit-breaker.ts';
import type { SharedCircuit } from '../../src/transcribe/circuit-share.ts';
import { manualClock, type ManualClock } from '../support/manual-clock.ts';
import { startTestRedis, type TestRedis } from '../support/redis-server.ts';
import { startTcpRelay, type TcpRelay } from '../support/tcp-relay.ts';
import { until } from '../support/until.ts';

const logger = pino({ level: 'silent' });
const FATAL_COOL_DOWN_MS = 60_000;

interface Host {
  breaker: CircuitBreaker;
  clock: ManualClock;
  client: Redis;
  /** The answers to its probe claims, as its breaker got them. */
  claims: boolean[];
  /** The open periods those claims were for. */
  periods: string[];
}

describe('circuit breakers shared by every host through Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const buses: CircuitBus[] = [];
  const relays: TcpRelay[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    for (const b of buses) b.close();
    for (const c of clients) c.disconnect();
    for (const r of relays) await r.close();
    await redis.stop();
  });

  /**
   * One host: its own connections and process id; its breaker of `backend` on its own clock; the answers to its
   * probe claims as its breaker got them. `through` sends its connections through relays the test holds; its
   * client then has no command timeout unless `failFast` (a claim held past it is given up on, which is not the
   * interleaving most tests hold it for).
   */
  async function host(
    prefix: string,
    backend = 'openai',
    through?: { client?: TcpRelay; sub?: TcpRelay; failFast?: boolean },
  ): Promise<Host> {
    const clientUrl = through?.client ? `redis://127.0.0.1:${through.client.port}` : redis.url;
    const client =
      through?.client && !through.failFast
        ? new Redis(clientUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })
        : await connectFailFast(clientUrl, logger);
    clients.push(client);
    const redisUrl = through?.sub ? `redis://127.0.0.1:${through.sub.port}` : redis.url;
    const bus = createCircuitBus({ redisUrl, client, prefix, processId: randomUUID(), logger });
    buses.push(bus);
    const circuit = bus.circuit(backend);
    const claims: boolean[] = [];
    const periods: string[] = [];
    const shared: SharedCircuit = {
      ...circuit,
      claimProbe: async (...args) => {
        periods.push(args[0]);
        const won = await circuit.claimProbe(...args);
        claims.push(won);
        return won;
      },
    };
    const clock = manualClock(Date.now());
    const breaker = createCircuitBreaker({
      name: backend,
      logger,
      failureThreshold: 2,
      coolDownMs: 10_000,
      fatalCoolDownMs: FATAL_COOL_DOWN_MS,
      clock,
      shared,
    });
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
    return { breaker, clock, client, claims, periods };
  }

  const isOpen = (b: CircuitBreaker) => () => b.snapshot().state === 'open';

  /** Host A opens the circuit (a plain fault), host B mirrors it, and both clocks reach the end of the cool-down. */
  async function halfOpenOnBoth(a: Host, b: Host): Promise<void> {
    (await a.breaker.admit()).fail({ reason: 'server-error', open: true, code: 'PROVIDER_UNAVAILABLE' });
    await until(isOpen(b.breaker), "host B to mirror host A's open circuit");
    a.clock.advance(10_000);
    b.clock.advance(10_000);
  }

  it("holds every host after one learns the key is revoked, a host that starts later too, until that host's probe closes it", async () => {
    const a = await host('p1');
    const b = await host('p1');
    const otherBackend = await host('p1', 'local');
    const otherDeployment = await host('p2');
    (await a.breaker.admit()).fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });

    await until(isOpen(b.breaker), "host B to mirror host A's open circuit");
    await expect(b.breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH', name: 'CircuitOpenError' });
    const late = await host('p1');
    await until(isOpen(late.breaker), 'a host started after the open to read it');
    await expect(late.breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
    // Another backend and another REDIS_PREFIX are not held.
    expect(otherBackend.breaker.snapshot().state).toBe('closed');
    expect(otherDeployment.breaker.snapshot().state).toBe('closed');

    // Host A's probe after its cool-down succeeds: every host closes, and a host that starts now has nothing to mirror.
    a.clock.advance(FATAL_COOL_DOWN_MS);
    const probe = await a.breaker.admit();
    expect(probe.probe).toBe(true);
    probe.succeed();
    await until(() => b.breaker.snapshot().state === 'closed', "host B to mirror host A's close");
    await until(() => late.breaker.snapshot().state === 'closed', "the late host to mirror host A's close");
    await expect(b.breaker.admit()).resolves.toMatchObject({ probe: false });
    const probeClient = new Redis(redis.url);
    clients.push(probeClient);
    expect(await probeClient.exists('p1:circuit:openai')).toBe(0);
  });

  it('mirrors an open said after a Redis restart (the subscriber reconnects)', async () => {
    const a = await host('p3');
    const b = await host('p3');
    await redis.restart();
    // The publisher fails fast while Redis is away (this host's breaker works without it): say it once it is back.
    await until(() => a.client.status === 'ready', "host A's connection to come back");
    (await a.breaker.admit()).fail({ reason: 'server-error' });
    (await a.breaker.admit()).fail({ reason: 'server-error' });
    expect(a.breaker.snapshot().state).toBe('open');
    await until(isOpen(b.breaker), 'host B to mirror the open said after the restart');
    expect(b.breaker.snapshot()).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', retryAt: a.breaker.snapshot().retryAt });
  });

  it("sends one half-open probe for every host: the others wait for its outcome, then go as that host's close says", async () => {
    const a = await host('p4');
    const b = await host('p4');
    await halfOpenOnBoth(a, b);
    const asked = { a: a.breaker.admit(), b: b.breaker.admit() };
    const first = await Promise.race([
      asked.a.then((permit) => ({ host: 'a' as const, permit })),
      asked.b.then((permit) => ({ host: 'b' as const, permit })),
    ]);
    expect(first.permit.probe).toBe(true);
    const waiting = first.host === 'a' ? asked.b : asked.a;
    first.permit.succeed();
    await expect(waiting).resolves.toMatchObject({ probe: false });
  });

  /**
   * Host B's probe claim is sent at once but reaches Redis only after host A's probe has ended the half-open
   * period, and the news of that end reaches B only after the answer to its claim: the order that load made once
   * in CI, made here every run by holding B's connections. A claim for a period that has ended must lose.
   */
  async function lateClaim(prefix: string, outcome: 'succeeds' | 'fails') {
    const toClient = await startTcpRelay(redis.port);
    const toSub = await startTcpRelay(redis.port);
    relays.push(toClient, toSub);
    const a = await host(prefix);
    const b = await host(prefix, 'openai', { client: toClient, sub: toSub });
    await halfOpenOnBoth(a, b);
    toClient.hold();
    toSub.hold();
    const asked = b.breaker.admit();
    await until(() => toClient.heldChunks > 0, "host B's probe claim to be on its way");
    const probe = await a.breaker.admit();
    expect(probe.probe).toBe(true);
    const reader = new Redis(redis.url);
    clients.push(reader);
    const openedBefore = await reader.get(`${prefix}:circuit:openai`);
    if (outcome === 'succeeds') probe.succeed();
    else probe.fail({ reason: 'server-error' });
    await until(
      async () => (await reader.get(`${prefix}:circuit:openai`)) !== openedBefore,
      `host A's ${outcome === 'succeeds' ? 'close' : 'new open'} to reach Redis`,
    );
    toClient.release();
    await until(() => b.claims.length === 1, "host B's breaker to get the answer to its claim");
    expect(b.claims).toEqual([false]);
    toSub.release();
    return { a, b, asked };
  }

  it("sends no second probe when a host's claim reaches Redis after the probe's success closed the circuit", async () => {
    const { a, b, asked } = await lateClaim('p5', 'succeeds');
    await expect(asked).resolves.toMatchObject({ probe: false });
    // The next open's half-open is claimed afresh: this time by host B, the first to ask.
    (await a.breaker.admit()).fail({ reason: 'server-error', open: true, code: 'PROVIDER_UNAVAILABLE' });
    await until(isOpen(b.breaker), "host B to mirror host A's second open");
    b.clock.advance(10_000);
    await expect(b.breaker.admit()).resolves.toMatchObject({ probe: true });
  });

  it("sends no probe during the next cool-down when a host's claim reaches Redis after the probe failed", async () => {
    const { a, b, asked } = await lateClaim('p6', 'fails');
    await until(
      () => b.breaker.snapshot().openedAt === a.breaker.snapshot().openedAt,
      "host B to mirror host A's new open",
    );
    // Its caller still waits, through the new cool-down.
    expect(b.breaker.snapshot()).toMatchObject({ state: 'open', waiting: 1 });
    // At the end of that cool-down its probe is claimed afresh, by host B, whose caller has waited for it.
    b.clock.advance(10_000);
    await expect(asked).resolves.toMatchObject({ probe: true });
  });

  it("sends no second probe when a host gave up waiting for its claim's answer (its event loop stalled past the command timeout)", async () => {
    const toClient = await startTcpRelay(redis.port);
    relays.push(toClient);
    const a = await host('p7');
    const b = await host('p7', 'openai', { client: toClient, failFast: true });
    await halfOpenOnBoth(a, b);
    const probe = await a.breaker.admit();
    expect(probe.probe).toBe(true);
    // Host B's connection gives up on its claim after a second (src/scale/shared-redis.ts), as it does when Redis
    // answered in time but this process did not run to read the answer: Redis knows who holds the probe. Whatever
    // B sends next goes at once, with the claim (its own timeout is not what this test is about).
    toClient.hold({ releaseAt: 2 });
    const asked = b.breaker.admit();
    await until(() => b.claims.length === 1, "host B's breaker to get an answer to its claim");
    expect(b.claims).toEqual([false]);
    probe.succeed();
    await expect(asked).resolves.toMatchObject({ probe: false });
  });

  /**
   * Host A's probe is out when a call host B sent before the open answers that the key is revoked: B opens again
   * (fatal), A mirrors that, then A's probe succeeds. Every running host closes on that success (a close at or after
   * an open ends it); the shared state must say the same, or a host that starts, or whose subscriber reconnects,
   * reads the fatal open and refuses every job for its cool-down while the others run.
   */
  async function openDuringProbe(prefix: string, relay?: TcpRelay) {
    const a = await host(prefix, 'openai', relay ? { client: relay } : undefined);
    const b = await host(prefix);
    const early = await b.breaker.admit();
    await halfOpenOnBoth(a, b);
    const probe = await a.breaker.admit();
    expect(probe.probe).toBe(true);
    const reader = new Redis(redis.url);
    clients.push(reader);
    return { a, b, early, probe, reader, key: `${prefix}:circuit:openai` };
  }

  it('forgets in Redis an open said while the probe was out once the probe succeeds, as every host does', async () => {
    const { a, b, early, probe, reader, key } = await openDuringProbe('p8');
    early.fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    await until(() => a.breaker.snapshot().code === 'PROVIDER_AUTH', "host A to mirror host B's fatal open");
    a.clock.advance(1_000);
    probe.succeed();
    expect(a.breaker.snapshot().state).toBe('closed');
    // B hears the close from the script that ran it in Redis: the state there is final by then.
    await until(() => b.breaker.snapshot().state === 'closed', "host B to mirror host A's close");
    expect(await reader.exists(key)).toBe(0);
    const late = await host('p8');
    await expect(late.breaker.admit()).resolves.toMatchObject({ probe: false });
  });

  it("keeps an open said after the probe's success, even when the close reaches Redis after it", async () => {
    const toClient = await startTcpRelay(redis.port);
    relays.push(toClient);
    const { a, b, early, probe, reader, key } = await openDuringProbe('p9', toClient);
    toClient.hold();
    probe.succeed();
    // Host B learns the key is revoked a second after A's probe succeeded; A's close is still on its way.
    b.clock.advance(1_000);
    early.fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    await until(
      async () => (await reader.get(key))?.includes('PROVIDER_AUTH') === true,
      "host B's open to reach Redis",
    );
    toClient.release();
    await until(() => a.breaker.snapshot().code === 'PROVIDER_AUTH', "host A to mirror host B's open");
    // A's close has run in Redis once its next command is answered there (one connection, in order).
    await a.client.ping();
    expect(await reader.get(key)).toContain('PROVIDER_AUTH');
    expect(b.breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_AUTH' });
    const late = await host('p9');
    await until(isOpen(late.breaker), 'a host started after both to read the open that stands');
  });

  /** Host B's breaker and host A's, whose subscriber goes through a relay the test can cut. */
  async function subscriberCutOff(prefix: string) {
    const toSub = await startTcpRelay(redis.port);
    relays.push(toSub);
    const a = await host(prefix, 'openai', { sub: toSub });
    const b = await host(prefix);
    return { a, b, toSub };
  }

  it("applies a close said while its subscriber was cut off as soon as it reconnects, without waiting out the probe's 'ended' mark", async () => {
    const { a, b, toSub } = await subscriberCutOff('p10');
    (await b.breaker.admit()).fail({ reason: 'server-error', open: true, code: 'PROVIDER_UNAVAILABLE' });
    await until(isOpen(a.breaker), "host A to mirror host B's open");
    toSub.cut();
    b.clock.advance(10_000);
    const probe = await b.breaker.admit();
    expect(probe.probe).toBe(true);
    probe.succeed();
    // B's close has run in Redis once its next command is answered there (one connection, in order).
    await b.client.ping();
    // A, not told, goes half-open at the end of its cool-down: the probe's claim says 'ended', so another host's
    // outcome is waited for (for the claim's hold time, on a clock that does not move here).
    a.clock.advance((a.breaker.snapshot().retryAt ?? Infinity) - a.clock.now());
    const asked = a.breaker.admit();
    await until(() => a.claims.length === 1, "host A's breaker to get the answer to its claim");
    expect(a.claims).toEqual([false]);
    toSub.mend();
    await until(() => a.breaker.snapshot().state === 'closed', 'host A to apply the close it missed, at reconnect');
    await expect(asked).resolves.toMatchObject({ probe: false });
  });

  it('ignores what a peer says that is not a message of this version (null, an endless time, a huge text) and stays up', async () => {
    const client = await connectFailFast(redis.url, logger);
    clients.push(client);
    const bus = createCircuitBus({ redisUrl: redis.url, client, prefix: 'p15', processId: randomUUID(), logger });
    buses.push(bus);
    const heard: Array<{ closedAt: number } | { openedAt: number }> = [];
    bus.circuit('openai').follow({
      opened: ({ openedAt }) => heard.push({ openedAt }),
      closed: (closedAt) => heard.push({ closedAt }),
    });
    const crashes: unknown[] = [];
    const onCrash = (err: unknown) => crashes.push(err);
    process.on('uncaughtException', onCrash);
    try {
      const peer = new Redis(redis.url);
      clients.push(peer);
      const said = (body: object) => JSON.stringify({ backend: 'openai', from: 'a-peer', ...body });
      // The subscriber has subscribed once a message published now reaches it.
      await until(async () => (await peer.pubsub('NUMSUB', 'p15:circuit'))[1] === 1, 'the subscriber to subscribe');
      for (const text of [
        'null',
        '[]',
        // JSON reads 1e400 as Infinity: a close at no time that closes every open.
        '{"backend":"openai","from":"a-peer","closedAt":1e400}',
        said({ closedAt: '5' }),
        said({ closedAt: 5.5 }),
        said({ closedAt: 7, pad: 'x'.repeat(1024 * 1024) }),
        said({ closedAt: 8 }),
      ]) {
        await peer.publish('p15:circuit', text);
      }
      await until(() => heard.some((h) => 'closedAt' in h && h.closedAt === 8), 'the last message to be mirrored');
      // Subscribed messages come in the order published: every one before the last was seen and dropped.
      expect(crashes).toEqual([]);
      expect(heard).toEqual([{ closedAt: 8 }]);
    } finally {
      process.off('uncaughtException', onCrash);
    }
  });

  it('mirrors an open said while its subscriber was cut off as soon as it reconnects', async () => {
    const { a, b, toSub } = await subscriberCutOff('p11');
    toSub.cut();
    (await b.breaker.admit()).fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    await b.client.ping();
    expect(a.breaker.snapshot().state).toBe('closed');
    toSub.mend();
    await until(isOpen(a.breaker), 'host A to mirror the open it missed, at reconnect');
    const { code, reason, openedAt, retryAt } = b.breaker.snapshot();
    expect(a.breaker.snapshot()).toMatchObject({ code, reason, openedAt, retryAt });
    await expect(a.breaker.admit()).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
  });

  /**
   * What a host of the version before open periods had ids (84a177a) did when its breaker opened: no id in the
   * open, its probe claim key cleared, the open stored for its cool-down and published, in one transaction.
   */
  async function openAsPreviousVersion(prefix: string, code: 'PROVIDER_UNAVAILABLE' | 'PROVIDER_AUTH') {
    const writer = new Redis(redis.url);
    clients.push(writer);
    const openedAt = Date.now();
    const opening = { code, reason: 'server-error', openedAt, retryAt: openedAt + 10_000 };
    const message = JSON.stringify({ backend: 'openai', from: randomUUID(), open: opening });
    await writer
      .multi()
      .del(`${prefix}:circuit-probe:openai`)
      .set(`${prefix}:circuit:openai`, JSON.stringify(opening), 'PX', opening.retryAt - Date.now())
      .publish(`${prefix}:circuit`, message)
      .exec();
    return opening;
  }

  const toRetryAt = (h: Host) => h.clock.advance((h.breaker.snapshot().retryAt ?? Infinity) - h.clock.now());

  it('holds every host on an open said by a host of the previous version (no period id), with one probe for all', async () => {
    const a = await host('p12');
    const b = await host('p12');
    const opening = await openAsPreviousVersion('p12', 'PROVIDER_UNAVAILABLE');
    await until(() => isOpen(a.breaker)() && isOpen(b.breaker)(), 'both hosts to mirror the open');
    const late = await host('p12');
    await until(isOpen(late.breaker), 'a host started after the open to read it');
    const hosts = [a, b, late];
    for (const h of hosts) expect(h.breaker.snapshot()).toMatchObject(opening);
    // Each host names the open's period alike, from its message or its key: one claim wins.
    for (const h of hosts) toRetryAt(h);
    const asked = hosts.map((h) => h.breaker.admit());
    await until(() => hosts.every((h) => h.claims.length === 1), 'every host to get the answer to its probe claim');
    expect(new Set(hosts.flatMap((h) => h.periods)).size).toBe(1);
    expect(hosts.flatMap((h) => h.claims).filter(Boolean)).toHaveLength(1);
    const winner = hosts.findIndex((h) => h.claims[0] === true);
    const probe = await asked[winner];
    expect(probe?.probe).toBe(true);
    probe?.succeed();
    for (const [i, permit] of asked.entries()) {
      if (i !== winner) await expect(permit).resolves.toMatchObject({ probe: false });
    }
  });

  it("ends a previous version's open period at the next open: a claim for it from a host not told of that open loses", async () => {
    const { a: c, b: a, toSub } = await subscriberCutOff('p13');
    const early = await a.breaker.admit();
    await openAsPreviousVersion('p13', 'PROVIDER_UNAVAILABLE');
    await until(() => isOpen(a.breaker)() && isOpen(c.breaker)(), 'both hosts to mirror the open');
    // Host A's call admitted before the open answers that the key is revoked: A opens again; C does not hear it.
    toSub.cut();
    early.fail({ reason: 'auth', open: true, code: 'PROVIDER_AUTH' });
    await a.client.ping();
    toRetryAt(c);
    const asked = c.breaker.admit();
    await until(() => c.claims.length === 1, "host C's breaker to get the answer to its claim");
    expect(c.claims).toEqual([false]);
    toSub.mend();
    await expect(asked).rejects.toMatchObject({ code: 'PROVIDER_AUTH' });
  });
});
