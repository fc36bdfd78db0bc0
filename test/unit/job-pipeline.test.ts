import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { runJobPipeline } from '../../src/jobs/job-pipeline.ts';
import { ShutdownSignal } from '../../src/jobs/pipeline-run.ts';
import { markProcessing } from '../../src/jobs/lifecycle.ts';
import { SqliteJobStore } from '../../src/jobs/store.ts';
import {
  chunkResult,
  chunkText,
  deferred,
  pipelineDeps,
  queuedJob,
  silentLogger,
  type Answer,
} from '../fixtures/pipeline.ts';
import { until } from '../support/until.ts';

const JOB = 'job_0123456789abcdefghijklmnop';

function signals() {
  const abort = new AbortController();
  const drain = new AbortController();
  return { abort, drain, signals: { abort: abort.signal, drain: drain.signal, epoch: 1 } };
}

/** A chunk error the transcriber marks as the end of the whole job (a revoked key). */
function fatal(): Error {
  return Object.assign(new AppError('PROVIDER_AUTH', 'The provider refused the key.'), { fatalForJob: true });
}

async function chunkStates(store: SqliteJobStore) {
  return (await store.listChunks(JOB)).map((c) => [c.index, c.status]);
}

describe('runJobPipeline', () => {
  it('plans a fresh job once, keeps the whole plan with it, sends every chunk in order and completes with their text', async () => {
    const t = pipelineDeps({ chunkS: 10 });
    await t.store.insertJob(queuedJob(JOB, 25));
    await runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger);

    expect(t.chunks.planned).toBe(1);
    expect(t.chunks.resumed).toEqual([]);
    expect(t.chunks.opened).toEqual([[10, 20]]);
    expect(t.sent).toEqual([0, 1, 2]);
    const job = (await t.store.getJob(JOB))!;
    expect(job).toMatchObject({
      status: 'completed',
      stage: null,
      percent: 100,
      chunksTotal: 3,
      slicingDone: true,
      completedAt: '2030-01-01T00:01:00.000Z',
    });
    expect(job.chunkPlan).toEqual({
      mode: 'copy',
      format: 'wav',
      maxBytes: 26_214_400,
      overlapS: 0,
      hardCuts: 0,
      reason: 'fake',
    });
    expect((await t.store.getTranscript(JOB))?.text).toBe([0, 1, 2].map(chunkText).join(' '));
  });

  it('resumes from the stored plan and chunks: nothing is planned again and no chunk with a stored result is sent again', async () => {
    const t = pipelineDeps({ chunkS: 10 });
    await t.store.insertJob(queuedJob(JOB, 25));
    const stored = {
      mode: 'encode',
      format: 'mp3',
      maxBytes: 1_000_000,
      overlapS: 0,
      hardCuts: 1,
      reason: 'planned before the restart',
    } as const;
    await markProcessing(t.store, JOB);
    await t.store.updateJob(JOB, { chunkPlan: stored, chunksTotal: 3 });
    for (const [i, start] of [0, 10, 20].entries()) await t.store.upsertChunk(JOB, i, start, i === 2 ? 5 : 10);
    await t.store.updateChunk(JOB, 0, { status: 'done', result: chunkResult(0, 10) });
    await t.store.updateChunk(JOB, 1, { status: 'done', result: chunkResult(1, 10) });

    await runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger);

    expect(t.chunks.planned).toBe(0);
    expect(t.chunks.resumed).toEqual([stored]);
    expect(t.chunks.opened).toEqual([[10, 20]]);
    expect(t.sent).toEqual([2]);
    expect((await t.store.getJob(JOB))?.status).toBe('completed');
    expect((await t.store.getTranscript(JOB))?.text).toBe([0, 1, 2].map(chunkText).join(' '));
  });

  it('ends at a job-fatal chunk error: nothing more is sent, the chunks after it stay pending for the runner to fail the job', async () => {
    const answer: Answer = async (input) => {
      if (input.index === 1) throw fatal();
      return chunkResult(input.index, input.durationS);
    };
    const t = pipelineDeps({ chunkS: 10, answer });
    await t.store.insertJob(queuedJob(JOB, 40));

    await expect(
      runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger),
    ).rejects.toMatchObject({
      code: 'PROVIDER_AUTH',
    });

    expect(t.sent).toEqual([0, 1]);
    expect(await chunkStates(t.store)).toEqual([
      [0, 'done'],
      [1, 'pending'],
      [2, 'pending'],
      [3, 'pending'],
    ]);
    expect((await t.store.getJob(JOB))?.status).toBe('processing');
  });

  it("sends the next chunk in a pool slot without waiting for the chunk before's progress write", async () => {
    const held = deferred();
    const raised: number[] = [];
    class HeldProgress extends SqliteJobStore {
      override async raisePercent(id: string, percent: number): Promise<void> {
        raised.push(percent);
        await held.promise;
        return super.raisePercent(id, percent);
      }
    }
    const t = pipelineDeps({ chunkS: 10, concurrency: 1, store: new HeldProgress({ file: ':memory:' }) });
    await t.store.insertJob(queuedJob(JOB, 25));
    const run = runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger);
    // One slot: every chunk goes out while the first one's percent is still not written.
    await until(
      () => t.sent.length === 3,
      () => `all 3 chunks sent (sent ${t.sent.join(',')})`,
      { timeoutMs: 10_000 },
    );
    expect(raised.length).toBeGreaterThan(0);
    held.resolve();
    await run;
    expect(await t.store.getJob(JOB)).toMatchObject({ status: 'completed', percent: 100 });
  });

  describe('failed chunks', () => {
    const rejectChunk1: Answer = async (input) => {
      if (input.index === 1) throw new AppError('PROVIDER_REJECTED', 'the audio is not readable');
      return chunkResult(input.index, input.durationS);
    };

    it('fail the job when more of them failed than MAX_FAILED_CHUNK_RATIO allows, naming the first one', async () => {
      const t = pipelineDeps({ chunkS: 10, answer: rejectChunk1, maxFailedChunkRatio: 0.2 });
      await t.store.insertJob(queuedJob(JOB, 40));

      await expect(
        runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger),
      ).rejects.toMatchObject({
        code: 'PROVIDER_REJECTED',
        message: '1 of 4 chunks could not be transcribed (first: the audio is not readable).',
      });
      // Not fatal for the job: every other chunk was still sent.
      expect(t.sent).toEqual([0, 1, 2, 3]);
      expect(await chunkStates(t.store)).toEqual([
        [0, 'done'],
        [1, 'failed'],
        [2, 'done'],
        [3, 'done'],
      ]);
    });

    it('within the ratio are gaps in the completed transcript', async () => {
      const t = pipelineDeps({ chunkS: 10, answer: rejectChunk1, maxFailedChunkRatio: 0.25 });
      await t.store.insertJob(queuedJob(JOB, 40));

      await runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger);

      expect((await t.store.getJob(JOB))?.status).toBe('completed');
      const segments = (await t.store.getTranscript(JOB))?.segments ?? [];
      expect(segments.map((s) => [s.chunk, s.text])).toEqual([
        [0, chunkText(0)],
        [1, '[inaudible: chunk 1 failed]'],
        [2, chunkText(2)],
        [3, chunkText(3)],
      ]);
    });
  });

  it('on shutdown lets the request in flight store its result, sends nothing more, and a later run sends only the rest', async () => {
    const inFlight = deferred();
    const letGo = deferred();
    const answer: Answer = async (input) => {
      if (input.index === 1) {
        inFlight.resolve();
        await letGo.promise;
      }
      return chunkResult(input.index, input.durationS);
    };
    const first = pipelineDeps({ chunkS: 10, answer });
    await first.store.insertJob(queuedJob(JOB, 30));
    const s = signals();
    const run = runJobPipeline((await first.store.getJob(JOB))!, first.deps, s.signals, silentLogger);
    await inFlight.promise;
    s.drain.abort();
    letGo.resolve();

    await expect(run).rejects.toBeInstanceOf(ShutdownSignal);
    expect(first.sent).toEqual([0, 1]);
    expect(await chunkStates(first.store)).toEqual([
      [0, 'done'],
      [1, 'done'],
      [2, 'pending'],
    ]);
    expect((await first.store.getJob(JOB))?.status).toBe('processing');

    const second = pipelineDeps({ chunkS: 10, store: first.store });
    await runJobPipeline((await first.store.getJob(JOB))!, second.deps, signals().signals, silentLogger);
    expect(second.chunks.planned).toBe(0);
    expect(second.sent).toEqual([2]);
    expect((await first.store.getTranscript(JOB))?.text).toBe([0, 1, 2].map(chunkText).join(' '));
  });

  it("stores a chunk's result after its progress notes, however late the store answers them", async () => {
    // A store on another host answers when it answers: here every 'retrying' note lands late.
    const late: Array<Promise<void>> = [];
    class SlowNotes extends SqliteJobStore {
      override updateChunk(...args: Parameters<SqliteJobStore['updateChunk']>): Promise<void> {
        if (args[2].status !== 'retrying') return super.updateChunk(...args);
        const write = new Promise((resolve) => setTimeout(resolve, 20)).then(() => super.updateChunk(...args));
        late.push(write);
        return write;
      }
    }
    const t = pipelineDeps({ chunkS: 10, concurrency: 3, store: new SlowNotes({ file: ':memory:' }) });
    t.deps.transcribe = async (input, hooks) => {
      hooks.onAttempt?.(1);
      hooks.onRetry?.({ attempt: 1, delayMs: 10, errorClass: 'server' });
      return chunkResult(input.index, input.durationS);
    };
    await t.store.insertJob(queuedJob(JOB, 25));
    await runJobPipeline((await t.store.getJob(JOB))!, t.deps, signals().signals, silentLogger);
    // Whatever is still on its way lands before the check.
    await Promise.all(late);
    expect(late).toHaveLength(3);
    expect(await chunkStates(t.store)).toEqual([
      [0, 'done'],
      [1, 'done'],
      [2, 'done'],
    ]);
    expect((await t.store.getJob(JOB))?.status).toBe('completed');
  });
});
