import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { chunkPlanRecord, type ChunkPlanRecord, type ChunkSubject } from '../chunker/chunk-source.ts';
import type { ChunkStream, SlicedChunk } from '../chunker/types.ts';
import { AppError, errorMessage } from '../errors.ts';
import { isDiskFull } from '../resources/disk-full.ts';
import { markCompleted, markProcessing, markSlicingDone, markTranscribing } from './lifecycle.ts';
import { createChunkStep, finishChunk, type Span } from './pipeline-chunk.ts';
import { ShutdownSignal, type PipelineDeps, type RunSignals, type Save } from './pipeline-run.ts';
import { transcriptFor } from './transcript.ts';
import type { ChunkRecord, JobRecord } from './types.ts';

/**
 * Drives one job from its upload to a stored transcript: plan, slice with ffmpeg as a stream, transcribe each
 * chunk the moment it is cut (per-job p-limit in front of the shared limiter), stitch. Every state change is
 * written to the store first. A resumed job skips the chunks whose result is already stored.
 */
export async function runJobPipeline(
  job: JobRecord,
  deps: PipelineDeps,
  signals: RunSignals,
  log: Logger,
): Promise<void> {
  const { abort: signal, drain, epoch } = signals;
  const { store, dirs, storage } = deps;
  // Until a request is out, shutdown may end any wait at once: the job resumes at the next start.
  const stopping = AbortSignal.any([signal, drain]);
  /** Every write the job cannot go on without; on shutdown a wait for space ends the run (it resumes later). */
  const save: Save = async (what, write, until = stopping) => {
    try {
      return await storage.run(what, write, until);
    } catch (err) {
      if (until.aborted && !signal.aborted && drain.aborted) throw new ShutdownSignal();
      throw err;
    }
  };
  await save('job start', () => markProcessing(store, job.id));
  // A resumed job's chunk directory was removed when the previous process stopped it.
  await save('job directory', () => dirs.create(job.id, epoch));

  const sequential = job.request.context === 'sequential';
  const copies = { hostCopy: dirs.uploadPath(job.id), runCopy: dirs.runUploadPath(job.id, epoch) };
  // A scratch disk that fills up while the upload downloads pauses the job like any other write.
  const file = await save('upload download', () => deps.uploads.fetch(job.id, copies, stopping));
  const subject: ChunkSubject = { file, audio: job.audio, model: job.request.model, sequential };
  let chunks = await store.listChunks(job.id);
  let plan: ChunkPlanRecord;
  if (chunks.length > 0) {
    // A resumed job keeps its plan: the stored chunks and the recipe chosen for them.
    plan = deps.chunks.resume(subject, job.chunkPlan ?? null);
  } else {
    const fresh = await deps.chunks.planChunks(subject, stopping);
    plan = chunkPlanRecord(fresh.recipe, fresh.hardCuts, fresh.lazy !== undefined);
    // A lazy plan's cuts come while slicing: its chunk rows are written as the chunks are cut, below.
    const bounds = fresh.lazy ? [] : [0, ...fresh.cuts, job.audio.duration_s];
    // Every write here is idempotent, so a retry after a full volume repeats them all.
    await save('chunk plan', async () => {
      // Before the chunks: a job resumed from them must find the plan they were cut by.
      await store.updateJob(job.id, { chunkPlan: plan });
      for (const [i, start] of bounds.slice(0, -1).entries())
        await store.upsertChunk(job.id, i, start, (bounds[i + 1] as number) - start);
      await store.updateJob(job.id, { chunksTotal: fresh.lazy ? fresh.lazy.plannedChunks : bounds.length - 1 });
    });
    chunks = await store.listChunks(job.id);
  }
  /** Chunks never sent again: those with a result from before, and those settled (done or failed) in this run. */
  const settled = new Map<number, Span>(chunks.filter((c) => c.status === 'done').map((c) => [c.index, c]));
  const { overlapS } = plan;
  log.info(
    {
      chunks: chunks.length,
      alreadyDone: settled.size,
      hardCuts: plan.hardCuts,
      chunkMode: plan.mode,
      chunkFormat: plan.format,
      overlapS,
      why: plan.reason,
    },
    'slicing',
  );

  // Context chaining needs the previous chunk's text before the next one goes: one at a time, in index order
  // (the slicer yields chunks in order and p-limit starts them first in, first out).
  const limit = pLimit(sequential ? 1 : deps.concurrency);
  // A job-fatal chunk error aborts the rest of the job at once, not after every queued chunk has failed too.
  const jobAbort = new AbortController();
  const onAbort = () => jobAbort.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  // Waits of a chunk on its way out; shutdown lets requests already sent finish and store their paid results.
  const stopSending = AbortSignal.any([jobAbort.signal, drain]);
  const startSlice = (): ChunkStream =>
    deps.chunks.open(subject, plan, {
      outDir: dirs.chunksDir(job.id, epoch),
      cutPoints: cutsSoFar(chunks, plan, job.audio.duration_s),
      lookahead: Math.max(2, deps.concurrency * 2),
      inFlight: sequential ? 1 : deps.concurrency,
      // On shutdown ffmpeg stops at once; requests in flight are let finish so their paid results are kept.
      signal: stopSending,
    });
  const followUps: Array<Promise<unknown>> = [];
  const transcribeChunk = createChunkStep({
    job,
    deps,
    signals,
    jobAbort,
    stopSending,
    sequential,
    save,
    settled,
    followUps,
    log,
  });

  const pending: Array<Promise<void>> = [];
  let sliced = 0;
  const stopSlicing = (err: unknown): unknown => {
    signal.removeEventListener('abort', onAbort);
    return jobAbort.signal.aborted ? jobAbort.signal.reason : drain.aborted ? new ShutdownSignal() : err;
  };
  // Slicing starts again (skipping the settled chunks) when ffmpeg ran out of space for the chunk files.
  for (;;) {
    const handle = startSlice();
    /** The last chunk this run of ffmpeg cut, if it was handed to a request. */
    let lastSent: SlicedChunk | null = null;
    try {
      for await (const chunk of handle.chunks) {
        sliced = chunk.index + 1;
        log.debug({ chunk: chunk.index, startS: chunk.startS, bytes: chunk.bytes }, 'chunk cut');
        if (sameSpan(settled.get(chunk.index), chunk)) {
          lastSent = null;
          await finishChunk(handle, chunk);
          continue;
        }
        await save(
          'chunk row',
          () => store.upsertChunk(job.id, chunk.index, chunk.startS, chunk.durationS),
          stopSending,
        );
        if (pending.length === 0) {
          await save('job stage', () => markTranscribing(store, job, deps.now()), stopSending);
        }
        lastSent = chunk;
        pending.push(limit(() => transcribeChunk(handle, chunk)));
      }
      break;
    } catch (err) {
      // Whatever was cut before ffmpeg failed is still transcribed; the job then fails with the slicer's error.
      await Promise.allSettled(pending);
      await Promise.allSettled(followUps);
      if (jobAbort.signal.aborted || drain.aborted || !isDiskFull(err)) throw stopSlicing(err);
      // ffmpeg lists a segment even when closing its file failed for lack of space: the last one it cut may be
      // short, so it is cut and sent again (the one request this can cost twice).
      if (lastSent) settled.delete(lastSent.index);
      log.warn(
        { err: errorMessage(err), resend: lastSent?.index ?? null },
        'slicing ran out of disk space; it starts again once space is freed',
      );
      storage.report('chunk files', err);
      try {
        await storage.writable(stopSending);
      } catch (waitErr) {
        throw stopSlicing(waitErr);
      }
    }
  }
  await Promise.allSettled(pending);
  await Promise.allSettled(followUps);
  signal.removeEventListener('abort', onAbort);
  if (jobAbort.signal.aborted) throw jobAbort.signal.reason;
  if (drain.aborted) throw new ShutdownSignal();

  await save('slicing end', () => markSlicingDone(store, job.id, sliced));
  await dirs.removeChunks(job.id, epoch);
  const final = await store.listChunks(job.id);
  assertEnoughChunks(final, deps.maxFailedChunkRatio);

  const transcript = transcriptFor({ ...job, chunkPlan: plan }, final, { partial: false });
  await save('transcript', () => markCompleted(store, job.id, transcript, deps.now()));
  log.info({ chunks: final.length, failed: final.filter((c) => c.status === 'failed').length }, 'job completed');
}

/**
 * The cut points the stored chunks stand for: where each after the first starts and, for a lazy plan (whose rows
 * are only the chunks cut so far), where the last one ends, when that is before the end of the file.
 */
function cutsSoFar(chunks: readonly ChunkRecord[], plan: ChunkPlanRecord, durationS: number): number[] {
  const cuts = chunks.slice(1).map((c) => c.startS);
  const last = chunks.at(-1);
  const end = last ? last.startS + last.durationS : 0;
  if (plan.lazy && last && end < durationS - 0.05 && end > (cuts.at(-1) ?? 0)) cuts.push(end);
  return cuts;
}

/**
 * Whether a stored result still covers the chunk just cut. A chunk split for the byte cap renumbers the ones
 * after it, so after a restart an index can name other audio than the result stored under it.
 */
function sameSpan(stored: Span | undefined, chunk: SlicedChunk): boolean {
  return (
    stored !== undefined &&
    Math.abs(stored.startS - chunk.startS) < 0.05 &&
    Math.abs(stored.durationS - chunk.durationS) < 0.05
  );
}

function assertEnoughChunks(chunks: ChunkRecord[], maxFailedRatio: number): void {
  const failed = chunks.filter((c) => c.status !== 'done');
  if (chunks.length === 0) throw new AppError('MEDIA_CORRUPT', 'No audio could be cut from the file.');
  if (failed.length === chunks.length || failed.length / chunks.length > maxFailedRatio) {
    const first = failed[0];
    throw new AppError(
      first?.errorCode && first.errorCode !== 'INTERNAL' ? first.errorCode : 'CHUNK_FAILED',
      `${failed.length} of ${chunks.length} chunks could not be transcribed (first: ${first?.errorMessage ?? 'unknown error'}).`,
    );
  }
}
