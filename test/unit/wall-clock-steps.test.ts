import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { untilJobEnds, type OpenAnswer } from '../../src/http/openai/answer.ts';
import type { JobRecord } from '../../src/jobs/types.ts';
import { sleep } from '../../src/transcribe/backoff.ts';
import { createChunkTranscriber } from '../../src/transcribe/chunk-transcriber.ts';
import { createCircuitBreaker } from '../../src/transcribe/circuit-breaker.ts';
import { createJobFeed } from '../../src/jobs/job-feed.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import { createProviderValidator } from '../../src/validate/provider-validator.ts';
import { DiskFullError } from '../../src/resources/disk-full.ts';
import { createStorageGuard } from '../../src/resources/storage-guard.ts';
import { queuedJob } from '../fixtures/pipeline.ts';
import type { ChunkResult, TranscribeInput, TranscriptionProvider } from '../../src/transcribe/types.ts';

const logger = pino({ level: 'silent' });
const HOUR_MS = 3_600_000;

/** From now on Date.now() reads an hour earlier (or later): NTP or an operator stepped the wall clock. */
function stepWallClockBack(byMs = HOUR_MS): void {
  const real = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => real() - byMs);
}

/**
 * `work`'s outcome, or 'still waiting' when it has not settled long after it should have (a guard, not a timing
 * assertion: each wait here is tens of ms, the guard 20 s; a wait stretched by the step would take an hour).
 */
async function settled<T>(work: Promise<T>): Promise<T | 'still waiting'> {
  let guard: NodeJS.Timeout | undefined;
  const late = new Promise<'still waiting'>((resolve) => {
    guard = setTimeout(() => resolve('still waiting'), 20_000);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(guard));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the wall clock stepped back an hour', () => {
  it('does not stretch a backoff sleep begun before the step', async () => {
    const slept = sleep(30).then(() => 'slept' as const);
    stepWallClockBack();
    expect(await settled(slept)).toBe('slept');
  });

  it("still ends a chunk whose call hangs at the chunk's deadline (armed before the step)", async () => {
    const provider: TranscriptionProvider = {
      name: 'openai',
      models: ['whisper-1'],
      transcribe: (input) => {
        // The step comes while the call is out: the deadline was armed before it.
        stepWallClockBack();
        return new Promise<ChunkResult>((_, reject) => {
          input.signal.addEventListener('abort', () => reject(input.signal.reason as Error), { once: true });
        });
      },
      check: () => Promise.resolve({ status: 'ok', detail: 'fake' }),
    };
    const transcriber = createChunkTranscriber({
      provider,
      limiter: { schedule: (fn) => fn(), pauseFor: () => undefined },
      breaker: createCircuitBreaker({ name: 'openai', logger, failureThreshold: 100, coolDownMs: 5000 }),
      logger,
      maxAttempts: 3,
      baseDelayMs: 40,
      maxDelayMs: 40,
      chunkDeadlineMs: 100,
    });
    const input: TranscribeInput = {
      jobId: 'job1',
      index: 0,
      path: '/tmp/c.mp3',
      durationS: 10,
      language: null,
      prompt: null,
      model: 'whisper-1',
      signal: new AbortController().signal,
    };
    const outcome = await settled(transcriber.transcribe(input).catch((err: unknown) => err));
    expect(outcome).toMatchObject({ code: 'CHUNK_FAILED' });
  });
  it('keeps an OpenAI-compatible answer polling for its job and sending keep-alives', async () => {
    let polls = 0;
    let keepAlives = 0;
    const answer: OpenAnswer = {
      write: () => undefined,
      end: () => undefined,
      keepAlive: () => void (keepAlives += 1),
      fail: () => undefined,
      signal: new AbortController().signal,
      clientGone: () => false,
    };
    const ended = { id: 'job1', status: 'completed' } as JobRecord;
    const store = {
      jobLifecycle: () => {
        polls += 1;
        // The step comes while the answer waits between its first and second poll.
        if (polls === 1) setTimeout(stepWallClockBack, 5);
        return Promise.resolve({
          status: polls < 10 ? ('processing' as const) : ('completed' as const),
          endedAt: null,
        });
      },
      getJob: () => Promise.resolve(ended),
      getTranscript: () => Promise.resolve(null),
    };
    const job = untilJobEnds(answer, { id: 'job1', owner: null }, { store, pollMs: 20, keepAliveMs: 40 });
    expect(await settled(job)).toBe(ended);
    expect(keepAlives).toBeGreaterThan(0);
  });

  it("ends an open circuit's cool-down on time (a probe goes), not when the wall clock catches up", async () => {
    const breaker = createCircuitBreaker({ name: 'openai', logger, failureThreshold: 1, coolDownMs: 50 });
    (await breaker.admit()).fail({ reason: 'HTTP 503' });
    expect(breaker.snapshot().state).toBe('open');
    stepWallClockBack();
    const permit = await settled(breaker.admit());
    expect(permit).toMatchObject({ probe: true });
  });
  it("keeps a job's event feed polling (its defaults): a change after the step is sent", async () => {
    const id = 'job_0123456789abcdefghijkl';
    const store = new SqliteJobStore({ file: ':memory:' });
    const stop = new AbortController();
    try {
      await store.insertJob({ ...queuedJob(id, 10), owner: null });
      const feed = createJobFeed({ store, pollMs: 20, logger });
      const events = (await feed.follow(id, { owner: null, signal: stop.signal }))[Symbol.asyncIterator]();
      expect((await events.next()).value).toMatchObject({ type: 'progress', job: { status: 'queued' } });
      await store.updateJob(id, { status: 'processing', stage: 'transcribing' });
      const next = settled(events.next());
      // The step comes while the feed waits between two reads.
      setTimeout(stepWallClockBack, 5);
      expect(await next).toMatchObject({ value: { type: 'progress', job: { status: 'processing' } } });
    } finally {
      stop.abort(new Error('test over'));
      store.close();
    }
  });

  it("asks the provider again once its down answer's TTL has passed (its default clock)", async () => {
    let checks = 0;
    const validator = createProviderValidator({
      provider: {
        name: 'openai',
        check: () => {
          checks += 1;
          return Promise.resolve(
            checks === 1 ? { status: 'down', detail: 'HTTP 503' } : { status: 'ok', detail: 'up' },
          );
        },
      },
      logger,
      failTtlMs: 30,
    });
    try {
      expect((await validator.current()).status).toBe('down');
      stepWallClockBack();
      // Past the TTL; before the fix the down answer was reused until the wall clock had caught up, an hour on.
      await sleep(60);
      expect((await validator.current()).status).toBe('ok');
    } finally {
      validator.stop();
    }
  });
});

describe('the wall clock stepped forward an hour', () => {
  it("does not cut an open circuit's cool-down short", async () => {
    const breaker = createCircuitBreaker({ name: 'openai', logger, failureThreshold: 1, coolDownMs: 60_000 });
    (await breaker.admit()).fail({ reason: 'HTTP 503' });
    stepWallClockBack(-HOUR_MS);
    expect(breaker.snapshot()).toMatchObject({ state: 'open', code: 'PROVIDER_UNAVAILABLE' });
    const waiting = breaker.admit();
    expect(breaker.snapshot().waiting).toBe(1);
    void waiting.catch(() => undefined);
  });

  it('keeps a write parked on a full disk waiting (its default clock), rather than failing its job at once', async () => {
    let room = false;
    const guard = createStorageGuard({ logger, hasRoom: () => Promise.resolve(room), retryMs: 20, maxWaitMs: 60_000 });
    let tries = 0;
    const write = () => {
      tries += 1;
      if (tries === 1) throw new DiskFullError('test', new Error('database or disk is full'));
      return 'stored';
    };
    try {
      const stored = guard.run('result', write, new AbortController().signal).catch((err: unknown) => err);
      stepWallClockBack(-HOUR_MS);
      // Several checks find no room; before the fix the first one found an hour waited and failed the write.
      await sleep(100);
      room = true;
      expect(await settled(stored)).toBe('stored');
    } finally {
      guard.stop();
    }
  });
});
