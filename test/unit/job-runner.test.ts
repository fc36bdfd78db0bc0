import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { JobEvents } from '../../src/jobs/events.ts';
import { JobRunner } from '../../src/jobs/runner.ts';
import type { JobRecord } from '../../src/jobs/types.ts';
import { chunkResult, deferred, pipelineDeps, queuedJob, silentLogger, type Answer } from '../fixtures/pipeline.ts';

const JOB = 'job_0123456789abcdefghijklmnop';
const NOW = new Date('2030-01-01T00:02:00.000Z');

function runnerFor(t: ReturnType<typeof pipelineDeps>) {
  const ended: JobRecord[] = [];
  const started: Array<[string, string, string]> = [];
  const leases = { adopted: [] as string[], released: [] as string[] };
  const events: Pick<JobEvents, 'started' | 'ended'> = {
    started: (job, at) => started.push([job.id, job.status, at.toISOString()]),
    ended: (job) => ended.push(job),
  };
  const runner = new JobRunner({
    logger: silentLogger,
    store: t.store,
    pipeline: t.deps,
    leases: {
      adopt: (jobId, bytes) => {
        leases.adopted.push(jobId);
        return { jobId, bytes, grow: () => undefined, settle: () => undefined, release: () => true };
      },
      release: (jobId) => {
        leases.released.push(jobId);
        return true;
      },
    },
    maxConcurrentJobs: 1,
    now: () => NOW,
    events,
  });
  return { runner, started, ended, leases };
}

/** Holds chunk `index` in flight until its request is aborted (as a real request would end). */
function holdChunk(index: number) {
  const inFlight = deferred();
  const answer: Answer = (input) => {
    if (input.index !== index) return Promise.resolve(chunkResult(input.index, input.durationS));
    inFlight.resolve();
    return new Promise((_, reject) => {
      input.signal.addEventListener('abort', () => reject(new AppError('CANCELLED', 'The request was aborted.')), {
        once: true,
      });
    });
  };
  return { answer, inFlight: inFlight.promise };
}

describe('JobRunner', () => {
  it('marks a job failed with its error, tells the listeners, removes its upload and releases its lease', async () => {
    const answer: Answer = async () => {
      throw Object.assign(new AppError('PROVIDER_AUTH', 'The provider refused the key.'), { fatalForJob: true });
    };
    const t = pipelineDeps({ chunkS: 10, answer });
    const { runner, started, ended, leases } = runnerFor(t);
    await t.store.insertJob(queuedJob(JOB, 25));

    await runner.enqueue(JOB);

    expect(await t.store.getJob(JOB)).toMatchObject({
      status: 'failed',
      stage: null,
      errorCode: 'PROVIDER_AUTH',
      errorMessage: 'The provider refused the key.',
      completedAt: NOW.toISOString(),
    });
    expect(started).toEqual([[JOB, 'queued', NOW.toISOString()]]);
    expect(ended.map((j) => [j.id, j.status])).toEqual([[JOB, 'failed']]);
    expect(t.dirs.removedUploads).toEqual([JOB]);
    expect(leases).toEqual({ adopted: [JOB], released: [JOB] });
  });

  it("fails a job on an error that is not the service's own with INTERNAL, without its words", async () => {
    const t = pipelineDeps({ chunkS: 10, answer: async () => chunkResult(0, 10) });
    t.deps = {
      ...t.deps,
      chunks: { ...t.deps.chunks, planChunks: async () => Promise.reject(new TypeError('a bug')) },
    };
    const { runner } = runnerFor(t);
    await t.store.insertJob(queuedJob(JOB, 25));

    await runner.enqueue(JOB);

    expect(await t.store.getJob(JOB)).toMatchObject({
      status: 'failed',
      errorCode: 'INTERNAL',
      errorMessage: 'The job failed because of an internal error.',
    });
  });

  it('marks a job cancelled mid-run, keeps no lease, and removes its directory here (the delete may run on another host)', async () => {
    const held = holdChunk(1);
    const t = pipelineDeps({ chunkS: 10, answer: held.answer });
    const { runner, ended, leases } = runnerFor(t);
    await t.store.insertJob(queuedJob(JOB, 25));

    const settled = runner.enqueue(JOB);
    await held.inFlight;
    await runner.cancel(JOB);
    await settled;

    expect(await t.store.getJob(JOB)).toMatchObject({
      status: 'cancelled',
      stage: null,
      completedAt: NOW.toISOString(),
    });
    expect(ended.map((j) => [j.id, j.status])).toEqual([[JOB, 'cancelled']]);
    expect(t.dirs.removedDirs).toEqual([JOB]);
    expect(leases.released).toEqual([JOB]);
  });

  it('leaves a job stopped by shutdown processing with its lease, and the next runner finishes it without sending done chunks again', async () => {
    const held = holdChunk(1);
    const first = pipelineDeps({ chunkS: 10, answer: held.answer });
    const one = runnerFor(first);
    await first.store.insertJob(queuedJob(JOB, 25));

    const settled = one.runner.enqueue(JOB);
    await held.inFlight;
    // No grace: the request in flight is aborted, and its chunk goes again at the next start.
    await one.runner.close(0);
    await settled;

    expect((await first.store.getJob(JOB))?.status).toBe('processing');
    expect(one.started.map(([id]) => id)).toEqual([JOB]);
    expect(one.ended).toEqual([]);
    expect(one.leases).toEqual({ adopted: [JOB], released: [] });
    expect(first.sent).toEqual([0, 1]);

    const second = pipelineDeps({ chunkS: 10, store: first.store });
    const two = runnerFor(second);
    expect(await two.runner.resumeUnfinished()).toBe(1);
    await two.runner.enqueue(JOB);

    expect((await first.store.getJob(JOB))?.status).toBe('completed');
    expect(second.sent).toEqual([1, 2]);
    // Resumed while processing: its queue wait ended with the first run's start and is not observed again.
    expect(two.started).toEqual([]);
    expect(two.ended.map((j) => [j.id, j.status])).toEqual([[JOB, 'completed']]);
    expect(two.leases).toEqual({ adopted: [JOB], released: [JOB] });
    expect(second.dirs.removedUploads).toEqual([JOB]);
  });

  it('leaves a job stopped by shutdown while its cuts are planned processing, not cancelled (planning says CANCELLED)', async () => {
    const t = pipelineDeps({ chunkS: 10 });
    const planning = deferred();
    // As silence detection does: an aborted scan ends with CANCELLED, whoever aborted it.
    t.deps.chunks = {
      ...t.deps.chunks,
      planChunks: (_subject, signal) => {
        planning.resolve();
        return new Promise((_, reject) => {
          signal.addEventListener(
            'abort',
            () => reject(new AppError('CANCELLED', 'Silence detection was cancelled.')),
            {
              once: true,
            },
          );
        });
      },
    };
    const { runner, ended, leases } = runnerFor(t);
    await t.store.insertJob(queuedJob(JOB, 25));
    const settled = runner.enqueue(JOB);
    await planning.promise;
    await runner.close(0);
    await settled;
    expect((await t.store.getJob(JOB))?.status).toBe('processing');
    expect(ended).toEqual([]);
    expect(leases.released).toEqual([]);
  });

  it('runs a job enqueued twice at once one time, with one lease, while the store is still answering', async () => {
    const t = pipelineDeps({ chunkS: 10 });
    await t.store.insertJob(queuedJob(JOB, 25));
    const { runner, leases, ended } = runnerFor(t);
    // Both calls come before the store has answered the first one's read.
    const [a, b] = [runner.enqueue(JOB), runner.enqueue(JOB)];
    await Promise.all([a, b]);
    expect(leases.adopted).toEqual([JOB]);
    expect(t.sent).toEqual([0, 1, 2]);
    expect(ended.map((j) => j.status)).toEqual(['completed']);
  });
});
