import { describe, expect, it } from 'vitest';
import {
  createHealth,
  HEALTH_REUSE_MS,
  type HealthBackend,
  type HealthDeps,
  type HealthReport,
} from '../../src/http/health-report.ts';
import { healthView, healthViewerFor, type HealthCredential } from '../../src/http/health-view.ts';
import type { ComponentCheck } from '../../src/resources/component-check.ts';
import type { PressureLevel } from '../../src/resources/system-monitor.ts';
import type { CircuitSnapshot } from '../../src/transcribe/circuit-breaker.ts';
import type { ProviderStatus } from '../../src/validate/provider-validator.ts';

const KEY = 'tenant-key-0123456789';
const TOKEN = 'metrics-token-0123456789';
const bearer = (token: string): string => `Bearer ${token}`;

describe('healthViewerFor: the caller credential decides the view', () => {
  const keys = { metricsToken: TOKEN };
  const noToken = { metricsToken: undefined };
  /** What the auth plugin sets: openAccess only in open mode, for a client OPEN_MODE_CLIENTS admits. */
  const who = (authorization: string | undefined, keyName: string | null, openAccess = false): HealthCredential => ({
    authorization,
    keyName,
    openAccess,
  });
  const cases: Array<[string, { metricsToken: string | undefined }, HealthCredential, string]> = [
    ['no credential, keys and token', keys, who(undefined, null), 'public'],
    ['a wrong token', keys, who(bearer('wrong-0123'), null), 'public'],
    ['the token without Bearer', keys, who(TOKEN, null), 'public'],
    ['a tenant key', keys, who(bearer(KEY), 'alice'), 'tenant'],
    ['the metrics token', keys, who(bearer(TOKEN), null), 'operator'],
    ['a key, no token configured', noToken, who(bearer(KEY), 'env-1'), 'tenant'],
    ['anything, no token configured', noToken, who(bearer(TOKEN), null), 'public'],
    ['open mode, a client it serves', noToken, who(undefined, null, true), 'operator'],
    // OPEN_MODE_CLIENTS=loopback and a remote client: what anyone without a credential sees.
    ['open mode, a client it does not serve', noToken, who(undefined, null), 'public'],
    ['open mode, a client it does not serve, with a bearer', noToken, who(bearer(KEY), null), 'public'],
    ['open mode with a token, a client it serves, no credential', keys, who(undefined, null, true), 'tenant'],
    ['open mode with a token, a client it does not serve', keys, who(undefined, null), 'public'],
    ['open mode with a token, the token', keys, who(bearer(TOKEN), null, true), 'operator'],
    ['open mode with a token, the token from a client it does not serve', keys, who(bearer(TOKEN), null), 'operator'],
  ];
  it.each(cases)('%s', (_what, config, credential, viewer) => {
    expect(healthViewerFor(config)(credential)).toBe(viewer);
  });
});

/** A report whose details name everything a tenant must not read. */
const REPORT: HealthReport = {
  status: 'down',
  components: {
    ffmpeg: { status: 'ok', detail: 'ffmpeg version 6.1.1' },
    provider: {
      status: 'down',
      detail: 'check failed: connect ECONNREFUSED 10.0.0.7:443',
      reason: 'provider_unavailable',
    },
    redis: { status: 'down', detail: 'redis connection reconnecting', reason: 'unreachable' },
    object_store: { status: 'ok', detail: 's3://uploads-bucket/cs/ answers' },
    queue: {
      status: 'ok',
      detail: '1 jobs running, 2 waiting; 3 requests in flight, 4 waiting for a token',
      load: { jobs_running: 1, jobs_waiting: 2, requests_in_flight: 3, requests_waiting: 4 },
    },
  },
};

describe('healthView', () => {
  it('gives the public the statuses only', () => {
    expect(healthView(REPORT, 'public')).toEqual({
      view: 'public',
      status: 'down',
      components: {
        ffmpeg: { status: 'ok' },
        provider: { status: 'down' },
        redis: { status: 'down' },
        object_store: { status: 'ok' },
        queue: { status: 'ok' },
      },
    });
  });

  it('gives a tenant the statuses, reason codes and queue figures, no detail', () => {
    const view = healthView(REPORT, 'tenant');
    expect(view).toEqual({
      view: 'tenant',
      status: 'down',
      components: {
        ffmpeg: { status: 'ok' },
        provider: { status: 'down', reason: 'provider_unavailable' },
        redis: { status: 'down', reason: 'unreachable' },
        object_store: { status: 'ok' },
        queue: { status: 'ok', load: { jobs_running: 1, jobs_waiting: 2, requests_in_flight: 3, requests_waiting: 4 } },
      },
    });
    for (const leak of ['10.0.0.7', 'uploads-bucket', 'version', 'ECONNREFUSED'])
      expect(JSON.stringify(view)).not.toContain(leak);
  });

  it('keeps a field added to a component later for the operator', () => {
    const extra = { status: 'ok', components: { x: { status: 'ok', detail: 'd', host: 'db.internal' } } };
    expect(JSON.stringify(healthView(extra as HealthReport, 'tenant'))).not.toContain('db.internal');
    expect(JSON.stringify(healthView(extra as HealthReport, 'operator'))).toContain('db.internal');
  });

  it('gives the operator everything', () => {
    expect(healthView(REPORT, 'operator')).toEqual({ view: 'operator', ...REPORT });
  });
});

describe('createHealth: each component not ok carries a reason code', () => {
  const backend = (
    name: string,
    isDefault: boolean,
    provider: Partial<ProviderStatus>,
    circuit: Partial<CircuitSnapshot> = {},
  ): HealthBackend => ({
    name,
    isDefault,
    validator: { current: async () => ({ status: 'ok', detail: 'ok', checkedAt: 0, ...provider }) },
    breaker: {
      snapshot: () => ({
        state: 'closed',
        reason: null,
        code: null,
        consecutiveFailures: 0,
        openedAt: null,
        retryAt: null,
        waiting: 0,
        ...circuit,
      }),
    },
    limiter: { stats: async () => ({ queued: 1, running: 2, tokens: 0, pausedUntil: null }) },
  });
  const deps = (over: {
    disk?: PressureLevel;
    memory?: PressureLevel;
    full?: boolean;
    leases?: number;
    redis?: ComponentCheck;
  }): HealthDeps => ({
    store: {
      kind: 'postgresql',
      ping: async () => {
        throw new Error('connect ECONNREFUSED db.internal:5432');
      },
    },
    monitor: {
      sample: async () => ({
        disk: { freeBytes: 1, totalBytes: 2, level: over.disk ?? 'normal' },
        memory: {
          rssBytes: 1,
          heapUsedBytes: 1,
          heapLimitBytes: 2,
          systemFreeBytes: 1,
          level: over.memory ?? 'normal',
          pressuredBy: [],
        },
        level: 'normal',
      }),
    },
    backends: [
      backend('openai', true, {
        status: 'down',
        detail: 'the provider rejected the API key (401)',
        code: 'PROVIDER_AUTH',
      }),
      backend('local', false, {
        status: 'down',
        detail: 'pocketsphinx not found on PATH',
        code: 'PROVIDER_UNAVAILABLE',
      }),
      backend('other', false, {}, { state: 'open', reason: '5 consecutive failures (503)' }),
    ],
    runner: { running: 3, waiting: 4 },
    dirPool: { usage: () => ({ leases: over.leases ?? 0, bytes: 0 }) },
    dirLimits: { maxLeases: 2, maxBytes: 10 },
    storage: { isFull: () => over.full ?? false },
    redisHealth: over.redis ? async () => over.redis! : null,
    objectStore: async () => ({ status: 'down', detail: 's3://bucket/: no answer within 2000 ms' }),
  });

  it('maps each check to its code, and the queue to its figures', async () => {
    // Not started: the binaries count as not checked yet (down).
    const report = await createHealth(
      deps({ disk: 'elevated', memory: 'critical', leases: 2, redis: { status: 'down', detail: 'redis PING failed' } }),
    ).report();
    const reasons = Object.fromEntries(Object.entries(report.components).map(([n, c]) => [n, [c.status, c.reason]]));
    expect(reasons).toEqual({
      ffmpeg: ['down', 'binary_unavailable'],
      ffprobe: ['down', 'binary_unavailable'],
      provider: ['down', 'provider_auth'],
      'provider:local': ['degraded', 'provider_unavailable'],
      'provider:other': ['degraded', 'circuit_open'],
      store: ['down', 'unreachable'],
      redis: ['down', 'unreachable'],
      object_store: ['down', 'unreachable'],
      disk: ['degraded', 'disk_low'],
      memory: ['down', 'memory_low'],
      queue: ['ok', undefined],
      job_dirs: ['ok', 'job_dirs_full'],
    });
    expect(report.components.queue?.load).toEqual({
      jobs_running: 3,
      jobs_waiting: 4,
      requests_in_flight: 6,
      requests_waiting: 3,
    });
    const full = await createHealth(deps({ full: true })).report();
    expect([full.components.disk?.status, full.components.disk?.reason]).toEqual(['down', 'disk_full']);
    expect(full.components.job_dirs?.reason).toBeUndefined();
  });

  it('makes one report at a time: callers while one is made share it, so a flood asks the dependencies once', async () => {
    let pings = 0;
    let buckets = 0;
    let open = (): void => undefined;
    let pinged = (): void => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const firstPing = new Promise<void>((resolve) => (pinged = resolve));
    let t = 5_000;
    const health = createHealth({
      ...deps({}),
      now: () => t,
      store: {
        kind: 'sqlite',
        ping: () => {
          pings++;
          pinged();
          return gate;
        },
      },
      objectStore: async () => {
        buckets++;
        return { status: 'ok', detail: 'bucket answers' };
      },
    });
    const flood = Array.from({ length: 20 }, () => health.report());
    await firstPing;
    open();
    const reports = await Promise.all(flood);
    expect([pings, buckets]).toEqual([1, 1]);
    expect(new Set(reports).size).toBe(1);
    expect(reports[0]?.components.store?.status).toBe('ok');
    // Once it is made, the next caller gets a new report, with the dependencies' answers of the last second.
    t += HEALTH_REUSE_MS - 1;
    const next = await health.report();
    expect(next).not.toBe(reports[0]);
    expect([pings, buckets]).toEqual([1, 1]);
    t += 1;
    await health.report();
    expect([pings, buckets]).toEqual([2, 2]);
  });

  it('reuses a failing answer as long as a good one: a failure and a recovery are each seen within HEALTH_REUSE_MS', async () => {
    let bucket: ComponentCheck = { status: 'ok', detail: 'bucket answers' };
    let asked = 0;
    let t = 0;
    const health = createHealth({
      ...deps({}),
      now: () => t,
      store: { kind: 'sqlite', ping: async () => undefined },
      objectStore: async () => {
        asked++;
        return bucket;
      },
    });
    const seen = async () => (await health.report()).components.object_store?.status;
    expect(await seen()).toBe('ok');
    bucket = { status: 'down', detail: 'no answer within 2000 ms' };
    t += HEALTH_REUSE_MS - 1;
    expect(await seen()).toBe('ok');
    t += 1;
    expect(await seen()).toBe('down');
    bucket = { status: 'ok', detail: 'bucket answers' };
    t += HEALTH_REUSE_MS - 1;
    expect(await seen()).toBe('down');
    t += 1;
    expect(await seen()).toBe('ok');
    expect(asked).toBe(3);
    // A clock set back (NTP) makes the answer stale, not fresh for as long as the step.
    t -= 60_000;
    await health.report();
    expect(asked).toBe(4);
  });
});
