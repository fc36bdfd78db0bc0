import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobStore } from '../../src/jobs/job-store.ts';
import { newJobId } from '../../src/jobs/ids.ts';
import { PgJobStore } from '../../src/jobs/pg-store.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import type { ChunkResult, Transcript } from '../../src/transcribe/types.ts';
import type { WebhookState } from '../../src/jobs/types.ts';
import { jobRecord } from '../support/job-record.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres-server.ts';

/*
 * One contract, every store: each behaviour the service relies on runs against SQLite and PostgreSQL, so the two
 * cannot drift. `open` gives a store and a second one on the same data (another process, another host).
 */

const logger = pino({ level: 'silent' });
const NOW = new Date('2030-01-01T00:10:00.000Z');
const now = () => NOW;

interface Pair {
  store: JobStore;
  other: JobStore;
}

let pg: TestPostgres;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg.stop();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const STORES: Array<[string, () => Promise<Pair>]> = [
  [
    'sqlite',
    async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-contract-'));
      const file = path.join(dir, 'jobs.sqlite');
      // shared: the other connection's writes are to be seen, as in scale-out.
      const pair = { store: new SqliteJobStore({ file, now, shared: true }), other: new SqliteJobStore({ file, now }) };
      cleanups.push(async () => {
        await pair.store.close();
        await pair.other.close();
        await rm(dir, { recursive: true, force: true });
      });
      return pair;
    },
  ],
  [
    'postgresql',
    async () => {
      const url = pg.urlOf(await pg.createDatabase());
      const pair = {
        store: await PgJobStore.open({ url, logger, now }),
        other: await PgJobStore.open({ url, logger, now }),
      };
      cleanups.push(async () => {
        await pair.store.close();
        await pair.other.close();
      });
      return pair;
    },
  ],
];

const result = (text: string): ChunkResult => ({
  text,
  language: 'en',
  segments: [{ start: 0, end: 1, text }],
  timing: 'segment',
});

describe.each(STORES)('job store contract: %s', (kind, open) => {
  it('stores a job and reads it back; another owner sees nothing', async () => {
    const { store } = await open();
    const job = { ...jobRecord(newJobId(), 'queued', null, 'alice'), keyName: 'team-a' };
    await store.insertJob(job);
    expect(await store.getJob(job.id)).toEqual({ ...job, webhook: null, chunkPlan: null });
    expect(await store.getJob(job.id, 'alice')).not.toBeNull();
    expect(await store.getJob(job.id, 'bob')).toBeNull();
    expect(await store.getJob(newJobId())).toBeNull();
    expect(store.kind).toBe(kind);
  });

  it('keeps one job per owner and Idempotency-Key, with the fingerprint of its request', async () => {
    const { store, other } = await open();
    const first = { ...jobRecord(newJobId(), 'queued', null, 'alice'), idempotencyKey: 'k1' };
    await store.insertJob(first, 'fp-1');
    // Another process racing with the same key loses at the unique index.
    await expect(other.insertJob({ ...first, id: newJobId() }, 'fp-2')).rejects.toThrow();
    const found = await store.findByIdempotencyKey('alice', 'k1');
    expect(found?.job.id).toBe(first.id);
    expect(found?.requestFingerprint).toBe('fp-1');
    expect(await store.findByIdempotencyKey('bob', 'k1')).toBeNull();
    // The same key under another owner, and under no owner (open mode), are other jobs.
    await store.insertJob({ ...jobRecord(newJobId(), 'queued', null, 'bob'), idempotencyKey: 'k1' });
    const open1 = { ...jobRecord(newJobId(), 'queued', null, null), idempotencyKey: 'k1' };
    await store.insertJob(open1);
    await expect(store.insertJob({ ...open1, id: newJobId() })).rejects.toThrow();
    expect((await store.findByIdempotencyKey(null, 'k1'))?.job.id).toBe(open1.id);
  });

  it('lists newest first in pages, by owner and status, and refuses a cursor it did not give', async () => {
    const { store } = await open();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const id = newJobId();
      ids.push(id);
      const at = `2030-01-01T00:00:0${i}.000Z`;
      await store.insertJob({ ...jobRecord(id, i % 2 ? 'completed' : 'queued', null, 'alice'), createdAt: at });
    }
    // Same created_at: the id orders them, byte by byte.
    const twins = ['job_AAAAAAAAAAAAAAAAAAAAAA', 'job_aaaaaaaaaaaaaaaaaaaaaa'];
    for (const id of twins)
      await store.insertJob({ ...jobRecord(id, 'queued', null, 'alice'), createdAt: '2030-01-01T00:00:09.000Z' });
    await store.insertJob(jobRecord(newJobId(), 'queued', null, 'bob'));

    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.listJobs({ owner: 'alice', limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((j) => j.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual([twins[1], twins[0], ...[...ids].reverse()]);
    const done = await store.listJobs({ owner: 'alice', status: 'completed', limit: 10 });
    expect(done.items.map((j) => j.id)).toEqual([ids[3], ids[1]]);
    expect(done.nextCursor).toBeNull();
    await expect(store.listJobs({ owner: 'alice', limit: 2, cursor: 'bm90LWEtY3Vyc29y' })).rejects.toMatchObject({
      code: 'INVALID_FIELD',
    });
  });

  it('updates a job (updated_at from its clock), ends it only while it is live, and only raises the percent', async () => {
    const { store } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'queued', null));
    expect(await store.updateJob(id, { status: 'processing', stage: 'slicing', chunkPlan: null })).toBe(true);
    expect(await store.getJob(id)).toMatchObject({
      status: 'processing',
      stage: 'slicing',
      updatedAt: NOW.toISOString(),
    });
    await store.raisePercent(id, 40);
    await store.raisePercent(id, 30);
    expect((await store.getJob(id))?.percent).toBe(40);
    const ended = { status: 'completed', completedAt: NOW.toISOString() } as const;
    expect(await store.updateJob(id, ended, { whileLive: true })).toBe(true);
    expect(await store.updateJob(id, { status: 'failed', errorCode: 'INTERNAL' }, { whileLive: true })).toBe(false);
    expect(await store.getJob(id)).toMatchObject({ status: 'completed', errorCode: null });
    expect(await store.updateJob(newJobId(), { status: 'failed' })).toBe(false);
  });

  it('keeps chunk results across a re-plan, resets chunks in flight, and drops chunks past the real count', async () => {
    const { store } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'processing', null));
    for (const i of [0, 1, 2, 3]) await store.upsertChunk(id, i, i * 10, 10);
    await store.updateChunk(id, 0, { status: 'done', attempts: 1, result: result('zero') });
    await store.updateChunk(id, 1, { status: 'sending', attempts: 2 });
    await store.updateChunk(id, 2, { status: 'retrying', nextTryAt: '2030-01-01T00:11:00.000Z', errorMessage: '503' });
    // A re-plan moves every chunk but the one with a result.
    expect(await store.upsertChunk(id, 0, 1, 5)).toMatchObject({ startS: 0, durationS: 10, status: 'done' });
    expect(await store.upsertChunk(id, 1, 11, 9.5)).toMatchObject({ startS: 11, durationS: 9.5, status: 'sending' });
    await store.resetChunksInFlight(id);
    expect((await store.listChunkStates(id)).map((c) => [c.index, c.status, c.nextTryAt])).toEqual([
      [0, 'done', null],
      [1, 'pending', null],
      [2, 'pending', null],
      [3, 'pending', null],
    ]);
    expect((await store.getChunk(id, 0))?.result).toEqual(result('zero'));
    expect(await store.getChunk(id, 9)).toBeNull();
    await store.deleteChunksFrom(id, 2);
    const chunks = await store.listChunks(id);
    expect(chunks.map((c) => c.index)).toEqual([0, 1]);
    expect(chunks[0]).toMatchObject({ jobId: id, attempts: 1, result: result('zero'), errorCode: null });
    expect(chunks[1]).toMatchObject({ attempts: 2, result: null });
  });

  it('fences each run of a job: a write carrying an earlier run epoch is refused and changes nothing', async () => {
    const { store, other } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'queued', null));
    const first = (await store.takeRun(id))!;
    await store.updateJob(id, { status: 'processing', stage: 'slicing' }, { fence: first });
    for (const i of [0, 1, 2]) await store.upsertChunk(id, i, i * 10, 10, first);
    await store.updateChunk(id, 0, { status: 'done', attempts: 1, result: result('first run') }, first);
    await store.updateChunk(id, 1, { status: 'sending', attempts: 1 }, first);
    await store.raisePercent(id, 30, first);
    // Another process (or host) takes the job over: the first run's epoch is no longer the job's.
    const second = (await other.takeRun(id))!;
    expect(second).toBeGreaterThan(first);
    const before = { job: await store.getJob(id), chunks: await store.listChunks(id) };
    const refused: Array<[string, () => Promise<unknown>]> = [
      ['updateJob', () => store.updateJob(id, { status: 'failed', errorCode: 'CHUNK_FAILED' }, { fence: first })],
      ['updateJob whileLive', () => store.updateJob(id, { status: 'cancelled' }, { whileLive: true, fence: first })],
      ['raisePercent', () => store.raisePercent(id, 90, first)],
      ['upsertChunk (new)', () => store.upsertChunk(id, 3, 30, 10, first)],
      ['upsertChunk (moved)', () => store.upsertChunk(id, 2, 21, 9, first)],
      ['updateChunk', () => store.updateChunk(id, 1, { status: 'done', result: result('stale') }, first)],
      ['resetChunksInFlight', () => store.resetChunksInFlight(id, first)],
      ['deleteChunksFrom', () => store.deleteChunksFrom(id, 1, first)],
      ['saveTranscript', () => store.saveTranscript(id, { text: 'stale' } as unknown as Transcript, first)],
    ];
    for (const [what, write] of refused)
      await expect(write(), what).rejects.toMatchObject({ name: 'RunSupersededError', jobId: id, epoch: first });
    expect({ job: await store.getJob(id), chunks: await store.listChunks(id) }).toEqual(before);
    expect(await store.getTranscript(id)).toBeNull();
    // The run that holds the job writes as before, from either process.
    await other.resetChunksInFlight(id, second);
    await store.updateChunk(id, 1, { status: 'done', result: result('second run') }, second);
    await store.upsertChunk(id, 3, 30, 10, second);
    await other.deleteChunksFrom(id, 3, second);
    await store.raisePercent(id, 90, second);
    await store.saveTranscript(id, { text: 'whole' } as unknown as Transcript, second);
    expect(await other.updateJob(id, { status: 'completed' }, { whileLive: true, fence: second })).toBe(true);
    expect((await other.listChunks(id)).map((c) => [c.index, c.status, c.result?.text ?? null])).toEqual([
      [0, 'done', 'first run'],
      [1, 'done', 'second run'],
      [2, 'pending', null],
    ]);
    expect(await other.getJob(id)).toMatchObject({ status: 'completed', percent: 90 });
    // An ended job is not taken up again; a live write that finds it ended is not a refusal; a gone job neither.
    expect(await store.takeRun(id)).toBeNull();
    expect(await store.updateJob(id, { status: 'failed' }, { whileLive: true, fence: second })).toBe(false);
    expect(await store.takeRun(newJobId())).toBeNull();
    await store.deleteJob(id);
    expect(await store.updateJob(id, { stage: 'slicing' }, { fence: second })).toBe(false);
    await store.updateChunk(id, 0, { status: 'pending' }, second);
  });

  it('lets a run that takes a job over wait for a write in flight, never interleave with it', async () => {
    const { store, other } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'processing', null));
    const first = (await store.takeRun(id))!;
    for (let i = 0; i < 20; i += 1) await store.upsertChunk(id, i, i, 1, first);
    // Stale writes racing the take-over: each one lands whole before it or is refused whole after it.
    const writes = Array.from({ length: 20 }, (_, i) =>
      store.updateChunk(id, i, { status: 'done', result: result(`stale ${i}`) }, first).then(
        () => 'written',
        (err: unknown) => (err as Error).name,
      ),
    );
    const second = (await other.takeRun(id))!;
    // What the new run reads once it holds the job is final: no stale write lands after it.
    const seen = (await other.listChunks(id)).map((c) => c.status);
    const outcomes = await Promise.all(writes);
    expect(outcomes.filter((o) => o !== 'written' && o !== 'RunSupersededError')).toEqual([]);
    expect((await other.listChunks(id)).map((c) => c.status)).toEqual(seen);
    expect(outcomes.filter((o) => o === 'written').length).toBe(seen.filter((s) => s === 'done').length);
    expect(second).toBe(first + 1);
  });

  it("counts an owner's live jobs: queued and processing, not ended, not another owner's", async () => {
    const { store } = await open();
    for (const status of ['queued', 'processing', 'processing', 'completed', 'failed', 'cancelled'] as const)
      await store.insertJob(jobRecord(newJobId(), status, null, 'owner-a'));
    await store.insertJob(jobRecord(newJobId(), 'queued', null, 'owner-b'));
    await store.insertJob(jobRecord(newJobId(), 'queued', null, null));
    expect(await store.liveJobsOf('owner-a')).toBe(3);
    expect(await store.liveJobsOf('owner-b')).toBe(1);
    expect(await store.liveJobsOf('owner-c')).toBe(0);
  });

  it('stores the transcript apart from the job row', async () => {
    const { store } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'processing', null));
    expect(await store.getTranscript(id)).toBeNull();
    const transcript = { text: 'hello', language: 'en', duration_s: 1, segments: [] } as unknown as Transcript;
    await store.saveTranscript(id, transcript);
    expect(await store.getTranscript(id)).toEqual(transcript);
  });

  it('answers the runner, the cleanup, the webhooks and the metrics', async () => {
    const { store } = await open();
    const queued = newJobId();
    const processing = newJobId();
    const oldDone = newJobId();
    const newDone = newJobId();
    const cancelled = newJobId();
    await store.insertJob({ ...jobRecord(queued, 'queued', null), createdAt: '2030-01-01T00:00:02.000Z' });
    await store.insertJob({ ...jobRecord(processing, 'processing', null), createdAt: '2030-01-01T00:00:01.000Z' });
    const hook = (id: string, status: 'completed' | 'failed', at: string) => ({
      ...jobRecord(id, status, at),
      request: { ...jobRecord(id, status, at).request, callback_url: 'https://example.test/hook' },
    });
    await store.insertJob(hook(oldDone, 'completed', '2030-01-01T00:01:00.000Z'));
    await store.insertJob(hook(newDone, 'failed', '2030-01-01T00:05:00.000Z'));
    await store.insertJob(jobRecord(cancelled, 'cancelled', '2030-01-01T00:02:00.000Z'));
    await store.updateJob(newDone, {
      webhook: { status: 'delivered', attempts: 1, last_status_code: 200, last_error: null, next_attempt_at: null },
    });

    expect((await store.unfinishedJobs()).map((j) => j.id)).toEqual([processing, queued]);
    expect(await store.jobLifecycle(queued)).toEqual({ status: 'queued', endedAt: null });
    expect(await store.jobLifecycle(oldDone)).toEqual({ status: 'completed', endedAt: '2030-01-01T00:01:00.000Z' });
    expect(await store.jobLifecycle(newJobId())).toBeNull();
    expect(await store.endedJobsBefore('2030-01-01T00:04:00.000Z', 10)).toEqual([oldDone, cancelled]);
    expect(await store.endedJobsBefore('2030-01-01T00:04:00.000Z', 1)).toEqual([oldDone]);
    expect((await store.webhookBacklog()).map((j) => j.id)).toEqual([oldDone]);
    expect(await store.jobIds()).toEqual(new Set([queued, processing, oldDone, newDone, cancelled]));
    expect(await store.countByStatus()).toEqual({ queued: 1, processing: 1, completed: 1, failed: 1, cancelled: 1 });
    await store.ping();
  });

  it('lets one process at a time claim a webhook delivery, and another take it over when the lease ends', async () => {
    const { store, other } = await open();
    const id = newJobId();
    const done = jobRecord(id, 'completed', '2030-01-01T00:01:00.000Z');
    await store.insertJob({ ...done, request: { ...done.request, callback_url: 'https://example.test/hook' } });
    const at = (s: number) => new Date(Date.parse('2030-01-01T00:02:00.000Z') + s * 1000).toISOString();
    const lease = (holder: string, s: number) => ({ holder, now: at(s), until: at(s + 30) });
    const owed = { status: 'pending', attempts: 0, last_status_code: null, last_error: null, next_attempt_at: at(0) };
    // Nothing is owed yet: nothing to claim.
    expect(await store.claimWebhook(id, lease('a', 0))).toMatchObject({ held: false, heldUntil: null });
    expect(await store.oweWebhook(id, owed as WebhookState)).toBe(true);
    // Owed once: another process beginning the same delivery writes nothing.
    expect(await other.oweWebhook(id, { ...(owed as WebhookState), attempts: 9 })).toBe(false);

    const claimed = await store.claimWebhook(id, lease('a', 0));
    expect(claimed).toMatchObject({ held: true, heldUntil: null, job: { id, webhook: owed } });
    expect(await other.claimWebhook(id, lease('b', 1))).toMatchObject({ held: false, heldUntil: at(30) });
    // A live lease is not claimed again, even by its holder (one attempt at a time in one process too).
    expect((await store.claimWebhook(id, lease('a', 2))).held).toBe(false);
    expect(await other.renewWebhook(id, 'b', at(100))).toBe(false);
    expect(await store.renewWebhook(id, 'a', at(40))).toBe(true);
    expect(await other.claimWebhook(id, lease('b', 35))).toMatchObject({ held: false, heldUntil: at(40) });

    // 'a' stopped renewing (dead host): at the lease's end 'b' takes the delivery over; 'a' can store nothing.
    expect((await other.claimWebhook(id, lease('b', 40))).held).toBe(true);
    const delivered: WebhookState = {
      status: 'delivered',
      attempts: 1,
      last_status_code: 200,
      last_error: null,
      next_attempt_at: null,
    };
    expect(await store.settleWebhook(id, 'a', { ...delivered, last_status_code: 500 })).toBe(false);
    expect(await store.renewWebhook(id, 'a', at(100))).toBe(false);
    expect(await other.settleWebhook(id, 'b', delivered)).toBe(true);
    expect((await store.getJob(id))?.webhook).toEqual(delivered);
    // Delivered: nothing left to claim, by anyone.
    expect(await store.claimWebhook(id, lease('a', 200))).toMatchObject({ held: false, heldUntil: null });

    // A release without an outcome keeps the stored state and frees the delivery at once.
    await store.updateJob(id, { webhook: owed as WebhookState });
    expect((await store.claimWebhook(id, lease('a', 300))).held).toBe(true);
    expect(await store.settleWebhook(id, 'a')).toBe(true);
    expect((await store.getJob(id))?.webhook).toEqual(owed);
    expect((await other.claimWebhook(id, lease('b', 301))).held).toBe(true);
    expect(await store.claimWebhook(newJobId(), lease('a', 0))).toEqual({ job: null, held: false, heldUntil: null });
  });

  it("lets the store's one user release the leases of its earlier lives, keeping their deliveries' states", async () => {
    const { store } = await open();
    const at = (s: number) => new Date(Date.parse('2030-01-01T00:02:00.000Z') + s * 1000).toISOString();
    const owed = { status: 'pending', attempts: 1, last_status_code: 500, last_error: 'x', next_attempt_at: at(0) };
    const ids = [newJobId(), newJobId(), newJobId()];
    for (const id of ids) {
      const done = jobRecord(id, 'completed', '2030-01-01T00:01:00.000Z');
      await store.insertJob({ ...done, request: { ...done.request, callback_url: 'https://example.test/hook' } });
      await store.oweWebhook(id, owed as WebhookState);
    }
    expect((await store.claimWebhook(ids[0]!, { holder: 'dead-1', now: at(0), until: at(30) })).held).toBe(true);
    expect((await store.claimWebhook(ids[1]!, { holder: 'dead-2', now: at(0), until: at(30) })).held).toBe(true);
    expect((await store.claimWebhook(ids[2]!, { holder: 'me', now: at(0), until: at(30) })).held).toBe(true);
    expect(await store.releaseWebhookLeases('me')).toBe(2);
    // Free at once (long before the dead holders' leases would end); the one of 'me' is still its own.
    expect((await store.claimWebhook(ids[0]!, { holder: 'me', now: at(1), until: at(31) })).held).toBe(true);
    expect((await store.claimWebhook(ids[1]!, { holder: 'me', now: at(1), until: at(31) })).held).toBe(true);
    expect((await store.claimWebhook(ids[2]!, { holder: 'me', now: at(1), until: at(31) })).held).toBe(false);
    for (const id of ids) expect((await store.getJob(id))?.webhook).toEqual(owed);
    expect(await store.releaseWebhookLeases('me')).toBe(0);
  });

  it('gives a webhook delivery to exactly one of many processes claiming it at the same moment', async () => {
    const { store, other } = await open();
    const id = newJobId();
    const done = jobRecord(id, 'failed', '2030-01-01T00:01:00.000Z');
    await store.insertJob({ ...done, request: { ...done.request, callback_url: 'https://example.test/hook' } });
    const state: WebhookState = {
      status: 'pending',
      attempts: 2,
      last_status_code: 503,
      last_error: null,
      next_attempt_at: null,
    };
    await store.oweWebhook(id, state);
    const claims = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 ? other : store).claimWebhook(id, {
          holder: `p${i}`,
          now: '2030-01-01T00:02:00.000Z',
          until: '2030-01-01T00:02:30.000Z',
        }),
      ),
    );
    expect(claims.filter((c) => c.held)).toHaveLength(1);
    expect(claims.filter((c) => !c.held).every((c) => c.heldUntil === '2030-01-01T00:02:30.000Z')).toBe(true);
  });

  it('deletes a job with its chunks', async () => {
    const { store } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'processing', null));
    await store.upsertChunk(id, 0, 0, 1);
    await store.deleteJob(id);
    expect(await store.getJob(id)).toBeNull();
    expect(await store.listChunks(id)).toEqual([]);
    // A job of the same id later has none of the old chunks.
    await store.insertJob(jobRecord(id, 'queued', null));
    expect(await store.listChunks(id)).toEqual([]);
  });

  it('serves a poll again while nothing is written, and reads again after any write by either store', async () => {
    const { store, other } = await open();
    const id = newJobId();
    await store.insertJob(jobRecord(id, 'processing', null, 'alice'));
    await store.upsertChunk(id, 0, 0, 1);
    const first = await store.pollView(id, 'alice');
    expect(first?.chunks.map((c) => c.status)).toEqual(['pending']);
    expect(await store.pollView(id, 'alice')).toBe(first);
    expect(await store.pollView(id, 'bob')).toBeNull();

    await other.updateChunk(id, 0, { status: 'sending', attempts: 1 });
    expect((await store.pollView(id, 'alice'))?.chunks[0]).toMatchObject({ status: 'sending', attempts: 1 });
    await other.upsertChunk(id, 1, 1, 1);
    expect((await store.pollView(id))?.chunks).toHaveLength(2);
    await other.deleteChunksFrom(id, 1);
    expect((await store.pollView(id))?.chunks).toHaveLength(1);
    await other.raisePercent(id, 50);
    expect((await store.pollView(id))?.job.percent).toBe(50);
    await other.resetChunksInFlight(id);
    expect((await store.pollView(id))?.chunks[0]?.status).toBe('pending');
    await other.updateJob(id, { status: 'cancelled', completedAt: NOW.toISOString() });
    expect((await store.pollView(id, 'alice'))?.job.status).toBe('cancelled');
    await store.updateJob(id, { stage: null });
    const settled = await store.pollView(id, 'alice');
    expect(await store.pollView(id, 'alice')).toBe(settled);
    await other.deleteJob(id);
    expect(await store.pollView(id, 'alice')).toBeNull();
    expect(await store.pollView(newJobId())).toBeNull();
  });
});

describe('PostgreSQL store: migrations', () => {
  it('migrates once when several processes start on an empty database at the same moment', async () => {
    const url = pg.urlOf(await pg.createDatabase());
    const stores = await Promise.all(Array.from({ length: 6 }, () => PgJobStore.open({ url, logger, now })));
    cleanups.push(async () => {
      for (const s of stores) await s.close();
    });
    const id = newJobId();
    await stores[0]!.insertJob(jobRecord(id, 'queued', null));
    for (const s of stores) expect((await s.getJob(id))?.id).toBe(id);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('SELECT version FROM chunkscribe_schema')).rows).toEqual([{ version: 3 }]);
    } finally {
      await client.end();
    }
    // A restart finds the schema current and changes nothing.
    const again = await PgJobStore.open({ url, logger, now });
    cleanups.push(() => again.close());
    expect((await again.getJob(id))?.status).toBe('queued');
  });
});
