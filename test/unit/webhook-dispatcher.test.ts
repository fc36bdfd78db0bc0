import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { toJobResource } from '../../src/http/job-resource.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import type { WebhookState } from '../../src/jobs/types.ts';
import { createWebhookDispatcher, type WebhookDispatcher, type WebhookOutcome } from '../../src/webhooks/dispatcher.ts';
import { WebhookRefusedError, type WebhookSend } from '../../src/webhooks/sender.ts';
import { deferred } from '../fixtures/pipeline.ts';
import { jobRecord } from '../support/job-record.ts';
import { manualClock, type ManualClock } from '../support/manual-clock.ts';

const logger = pino({ level: 'silent' });
const T0 = Date.parse('2030-01-01T00:00:10.000Z');
const settled = () => new Promise((r) => setImmediate(r));
/** A delivery owed again after one failed attempt, its next attempt at `next`. */
const retryOwed = (next: string): WebhookState => ({
  status: 'pending',
  attempts: 1,
  last_status_code: 503,
  last_error: 'HTTP 503',
  next_attempt_at: next,
});

/**
 * A store whose chunk read (the body is built from it after the claim) waits for `until`, as a process that
 * stalled between its claim and its request would.
 */
function stalledRead(until: Promise<unknown>): SqliteJobStore {
  return new (class extends SqliteJobStore {
    override async listChunkStates(...args: Parameters<SqliteJobStore['listChunkStates']>) {
      await until;
      return super.listChunkStates(...args);
    }
  })({ file: ':memory:' });
}

const open: Array<{ store: SqliteJobStore; dispatcher: WebhookDispatcher }> = [];
afterEach(async () => {
  for (const { store, dispatcher } of open.splice(0)) {
    await dispatcher.stop();
    await store.close();
  }
});

/**
 * A completed job with a callback, a receiver answering from `statuses` (then 200), on a clock with skewed timers.
 * `overrides` replaces the sender's answer (after its send time is recorded), the secret or the store.
 */
async function setup(
  skewMs: number,
  statuses: number[] = [],
  webhook: WebhookState | null = null,
  overrides: { answer?: WebhookSend; secret?: string | undefined; store?: SqliteJobStore } = {},
) {
  const clock: ManualClock = manualClock(T0, { skewMs });
  const store = overrides.store ?? new SqliteJobStore({ file: ':memory:' });
  const job = jobRecord('job1', 'completed', '2030-01-01T00:00:05.000Z');
  await store.insertJob({ ...job, request: { ...job.request, callback_url: 'http://127.0.0.1:9/hook' } });
  if (webhook) await store.updateJob(job.id, { webhook });
  const sentAt: number[] = [];
  const outcomes: WebhookOutcome[] = [];
  const dispatcher = createWebhookDispatcher({
    store,
    describe: async (job, nowMs) => toJobResource(job, await store.listChunkStates(job.id), nowMs),
    send: (request) => {
      sentAt.push(clock.now());
      return overrides.answer ? overrides.answer(request) : Promise.resolve({ statusCode: statuses.shift() ?? 200 });
    },
    logger,
    secret: 'secret' in overrides ? overrides.secret : `whsec_${Buffer.from('test-secret').toString('base64')}`,
    maxAttempts: 5,
    retryBaseMs: 1000,
    retryMaxMs: 1000,
    onOutcome: (outcome) => outcomes.push(outcome),
    holder: 'this-process',
    clock,
    // Jitter at its bottom: the retry waits the floor, half the ceiling (500 ms).
    random: () => 0,
  });
  open.push({ store, dispatcher });
  return { clock, store, dispatcher, sentAt, outcomes, ended: () => store.getJob('job1') };
}

describe('webhook dispatcher', () => {
  it.each([-1, -200, 0, 100])('retries at next_attempt_at, not before, with timers skewed by %i ms', async (skewMs) => {
    const { clock, dispatcher, sentAt, outcomes, ended } = await setup(skewMs, [503]);
    const job = await ended();
    if (!job) throw new Error('no job');
    dispatcher.ended(job);
    clock.advance(Math.max(0, skewMs));
    await settled();
    expect(sentAt).toEqual([T0 + Math.max(0, skewMs)]);
    const next = (await ended())?.webhook?.next_attempt_at;
    expect(next).toBe(new Date(sentAt[0]! + 500).toISOString());

    clock.advance(499);
    await settled();
    expect(sentAt).toHaveLength(1);
    clock.advance(1 + Math.max(0, skewMs));
    await settled();
    expect(sentAt).toHaveLength(2);
    expect(sentAt[1]).toBeGreaterThanOrEqual(Date.parse(next ?? ''));
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(outcomes).toEqual(['failed_attempt', 'delivered']);
    expect(clock.pending()).toBe(0);
  });

  it('resumes a stored pending delivery at its next_attempt_at when timers fire early', async () => {
    const pending = retryOwed(new Date(T0 + 2000).toISOString());
    const { clock, dispatcher, sentAt, ended } = await setup(-1, [], pending);
    await dispatcher.start();
    clock.advance(1999);
    await settled();
    expect(sentAt).toEqual([]);
    clock.advance(1);
    await settled();
    expect(sentAt).toEqual([T0 + 2000]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('sends at once a stored pending delivery whose next_attempt_at is not a date', async () => {
    const pending = retryOwed('not a date');
    const { clock, dispatcher, sentAt, ended } = await setup(0, [], pending);
    await dispatcher.start();
    clock.advance(0);
    await settled();
    expect(sentAt).toEqual([T0]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('reports the last failed attempt as failed, a refused address as refused and a missing secret as unsigned', async () => {
    const failing = await setup(0, [500, 500, 500, 500, 500]);
    failing.dispatcher.ended((await failing.ended())!);
    for (let attempt = 1; attempt <= 5; attempt++) {
      // Each retry waits the jitter floor, 500 ms.
      failing.clock.advance(attempt === 1 ? 0 : 500);
      await settled();
    }
    expect(failing.sentAt).toHaveLength(5);
    expect((await failing.ended())?.webhook).toMatchObject({ status: 'failed', attempts: 5 });
    expect(failing.outcomes).toEqual([
      'failed_attempt',
      'failed_attempt',
      'failed_attempt',
      'failed_attempt',
      'failed',
    ]);

    const refused = await setup(0, [], null, {
      answer: () => Promise.reject(new WebhookRefusedError('the address is private')),
    });
    refused.dispatcher.ended((await refused.ended())!);
    refused.clock.advance(0);
    await settled();
    expect((await refused.ended())?.webhook).toMatchObject({ status: 'failed', attempts: 1 });
    expect(refused.outcomes).toEqual(['refused']);

    const unsigned = await setup(0, [], null, { secret: undefined });
    unsigned.dispatcher.ended((await unsigned.ended())!);
    unsigned.clock.advance(0);
    await settled();
    expect(unsigned.sentAt).toEqual([]);
    expect(unsigned.outcomes).toEqual(['unsigned']);
  });

  it('sends nothing while another process holds the delivery, and takes it over when that lease runs out', async () => {
    const pending = retryOwed(new Date(T0).toISOString());
    const { clock, store, dispatcher, sentAt, ended } = await setup(-1, [], pending);
    // Another host claimed the attempt, then died (it never renews nor settles).
    const until = new Date(T0 + 30_000).toISOString();
    expect(
      (await store.claimWebhook('job1', { holder: 'dead-host', now: new Date(T0).toISOString(), until })).held,
    ).toBe(true);
    await dispatcher.start();
    clock.advance(0);
    await settled();
    clock.advance(29_999);
    await settled();
    expect(sentAt).toEqual([]);
    clock.advance(1);
    await settled();
    expect(sentAt).toEqual([T0 + 30_000]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(clock.pending()).toBe(0);
  });

  it('renews its lease while an attempt is in flight, so no other process takes it over meanwhile', async () => {
    const answer = deferred<{ statusCode: number }>();
    const { clock, store, dispatcher, sentAt, ended } = await setup(0, [], null, { answer: () => answer.promise });
    dispatcher.ended((await ended())!);
    clock.advance(0);
    await settled();
    const other = (s: number) => ({
      holder: 'other-host',
      now: new Date(T0 + s * 1000).toISOString(),
      until: new Date(T0 + s * 1000 + 30_000).toISOString(),
    });
    try {
      expect(sentAt).toEqual([T0]);
      // Renewed every 10 s to 30 s ahead: at 45 s the lease still runs (to 70 s at the renewal at 40 s).
      for (let s = 0; s < 45; s += 5) {
        clock.advance(5000);
        await settled();
      }
      expect(await store.claimWebhook('job1', other(45))).toMatchObject({
        held: false,
        heldUntil: new Date(T0 + 70_000).toISOString(),
      });
    } finally {
      // Answered whatever happened: the dispatcher's stop (afterEach) waits for the attempt.
      answer.resolve({ statusCode: 204 });
    }
    await settled();
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 1, last_status_code: 204 });
    expect(clock.pending()).toBe(0);
    expect((await store.claimWebhook('job1', other(46))).held).toBe(false);
  });

  it('sends nothing when it stalled after its claim past the lease and another process took the delivery over', async () => {
    const stalled = deferred();
    const pending = retryOwed(new Date(T0).toISOString());
    const { clock, store, dispatcher, sentAt, ended } = await setup(0, [], pending, {
      store: stalledRead(stalled.promise),
    });
    await dispatcher.start();
    clock.advance(0);
    await settled();
    // The lease (to T0 + 30 s) runs out; another host claims the delivery and makes its attempt.
    clock.advance(30_000);
    const other = { holder: 'other-host', now: new Date(T0 + 30_000).toISOString() };
    expect((await store.claimWebhook('job1', { ...other, until: new Date(T0 + 60_000).toISOString() })).held).toBe(
      true,
    );
    stalled.resolve();
    await settled();
    expect(sentAt).toEqual([]);
    // The other host's attempt is delivered; this process, looking again when that lease would end, sends nothing.
    const delivered = { ...retryOwed(''), status: 'delivered' as const, attempts: 2, next_attempt_at: null };
    expect(await store.settleWebhook('job1', 'other-host', delivered)).toBe(true);
    clock.advance(30_000);
    await settled();
    expect(sentAt).toEqual([]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(clock.pending()).toBe(0);
  });

  it('sends after a stall past its lease when no other process claimed the delivery meanwhile', async () => {
    const stalled = deferred();
    const pending = retryOwed(new Date(T0).toISOString());
    const { clock, dispatcher, sentAt, ended } = await setup(0, [], pending, {
      store: stalledRead(stalled.promise),
    });
    await dispatcher.start();
    clock.advance(0);
    await settled();
    clock.advance(30_000);
    stalled.resolve();
    await settled();
    expect(sentAt).toEqual([T0 + 30_000]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('sends the first attempt only once the pending delivery is stored, however late the store answers', async () => {
    // A store on another host answers when it answers: here the write of the pending state waits for the test.
    const release = deferred();
    class SlowPending extends SqliteJobStore {
      override async oweWebhook(...args: Parameters<SqliteJobStore['oweWebhook']>): Promise<boolean> {
        await release.promise;
        return super.oweWebhook(...args);
      }
    }
    const { clock, dispatcher, sentAt, ended } = await setup(0, [], null, {
      store: new SlowPending({ file: ':memory:' }),
    });
    dispatcher.ended((await ended())!);
    clock.advance(0);
    await settled();
    expect(sentAt).toEqual([]);
    release.resolve();
    await settled();
    clock.advance(0);
    await settled();
    expect(sentAt).toEqual([T0]);
    expect((await ended())?.webhook).toMatchObject({ status: 'delivered', attempts: 1 });
  });
});
