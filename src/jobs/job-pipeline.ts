import { rm } from 'node:fs/promises';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { chunkPlanRecord, type ChunkPlanRecord, type ChunkSource, type ChunkSubject } from '../chunker/chunk-source.ts';
import type { ChunkStream, SlicedChunk } from '../chunker/types.ts';
import { AppError, errorMessage, isAppError } from '../errors.ts';
import { isDiskFull } from '../resources/disk-full.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import { StorageWaitExceeded, type StorageGuard } from '../resources/storage-guard.ts';
import type { UploadStore } from '../storage/upload-store.ts';
import { chainedPrompt } from '../transcribe/context-prompt.ts';
import type { ChunkResult, TranscribeInput } from '../transcribe/types.ts';
import { markCompleted, markProcessing, markSlicingDone, markTranscribing } from './lifecycle.ts';
import { computeProgress } from './progress.ts';
import { RunLostError } from './run-fence.ts';
import type { ChunkPatch, JobStore } from './job-store.ts';
import { transcriptFor } from './transcript.ts';
import type { ChunkRecord, JobRecord } from './types.ts';

export interface PipelineDeps {
  store: JobStore;
  dirs: JobDirs;
  /** Where the upload is kept: with an object store, a job run on another host than the upload's gets it here. */
  uploads: Pick<UploadStore, 'fetch'>;
  /** Where writes that fail for lack of space wait for it (the job pauses instead of failing). */
  storage: Pick<StorageGuard, 'run' | 'attempt' | 'report' | 'writable'>;
  /** Plans a fresh job's chunks, keeps a resumed job's plan, and cuts the chunk files. */
  chunks: Pick<ChunkSource, 'planChunks' | 'resume' | 'open'>;
  transcribe(input: TranscribeInput, hooks: TranscribeHooks): Promise<ChunkResult>;
  concurrency: number;
  maxFailedChunkRatio: number;
  now: () => Date;
}

export interface TranscribeHooks {
  onAttempt?(attempt: number): void;
  onRetry?(info: { attempt: number; delayMs: number; errorClass: string; code?: string }): void;
  /** The chunk is held before its next attempt (the provider's circuit is open) until `until` (epoch ms). */
  onWaiting?(info: { reason: string; until: number | null }): void;
}

/** What one run of a job is stopped by, and what it is. */
export interface RunSignals {
  /** Cancel (or the loss of the job): everything stops. */
  abort: AbortSignal;
  /** Shutdown: no new requests; those in flight may finish and store their results. */
  drain: AbortSignal;
  /** The run's epoch (JobStore.takeRun): its chunk files go to a directory of its own. */
  epoch: number;
  /**
   * Whether the runner still holds the job, asked right before each provider request: false stops the job before
   * the request leaves (a runner that woke up past its queue lock sends nothing). Absent: always held.
   */
  held?: () => boolean;
}

/** Thrown when the service stops before the job finished: the job stays `processing` and resumes at the next start. */
export class ShutdownSignal extends Error {
  constructor() {
    super('service shutting down');
    this.name = 'ShutdownSignal';
  }
}

type Span = Pick<ChunkRecord, 'startS' | 'durationS'>;

/** A chunk error that ends the whole job (bad key, exhausted quota), as the transcriber marks it. */
function isFatalForJob(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { fatalForJob?: unknown }).fatalForJob === true;
}

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
  /**
   * A write the job cannot go on without: on a full volume it waits for space (the job pauses) until `until`
   * is aborted or DISK_FULL_MAX_WAIT_S has passed.
   */
  const save = async <T>(what: string, write: () => T | Promise<T>, until: AbortSignal = stopping): Promise<T> => {
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

  const subject: ChunkSubject = { file: dirs.uploadPath(job.id), audio: job.audio, model: job.request.model };
  // A scratch disk that fills up while the upload downloads pauses the job like any other write.
  await save('upload download', () => deps.uploads.fetch(job.id, subject.file, stopping));
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
  const sequential = job.request.context === 'sequential';
  const limit = pLimit(sequential ? 1 : deps.concurrency);
  // A job-fatal chunk error aborts the rest of the job at once, not after every queued chunk has failed too.
  const jobAbort = new AbortController();
  const onAbort = () => jobAbort.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  // Waits of a chunk on its way out; shutdown lets requests already sent finish and store their paid results.
  const stopSending = AbortSignal.any([jobAbort.signal, drain]);
  /** Right before a request leaves: a run that no longer holds the job stops here, the request unsent. */
  const beforeRequest = () => {
    if (signals.held && !signals.held()) jobAbort.abort(new RunLostError('its hold on the job ran out unrenewed'));
  };
  const startSlice = (): ChunkStream =>
    deps.chunks.open(subject, plan, {
      outDir: dirs.chunksDir(job.id, epoch),
      cutPoints: cutsSoFar(chunks, plan, job.audio.duration_s),
      lookahead: Math.max(2, deps.concurrency * 2),
      inFlight: sequential ? 1 : deps.concurrency,
      // On shutdown ffmpeg stops at once; requests in flight are let finish so their paid results are kept.
      signal: stopSending,
    });

  const finishChunk = async (handle: ChunkStream, chunk: SlicedChunk) => {
    handle.release(chunk.index);
    await rm(chunk.path, { force: true });
  };
  /**
   * What a chunk leaves to do once its result is stored (its file removed, the job's percent raised): done after
   * its pool slot is free, so the next request does not wait for it; awaited before the job moves on.
   */
  const followUps: Array<Promise<unknown>> = [];

  const transcribeChunk = async (handle: ChunkStream, chunk: SlicedChunk): Promise<void> => {
    const clog = log.child({ chunk: chunk.index });
    /**
     * Progress details: on a full volume they are skipped (the chunk's result is what must not be lost). The
     * hooks do not wait for them, so they are chained: a state written late must not land over a later one (a
     * `retrying` after `done`), and the chunk's final write waits for the chain.
     */
    let notes: Promise<unknown> = Promise.resolve();
    const note = (index: number, patch: ChunkPatch) => {
      notes = notes
        .then(() => storage.attempt('chunk state', () => store.updateChunk(job.id, index, patch)))
        .catch((err: unknown) => clog.warn({ err: errorMessage(err) }, 'chunk state not stored'));
    };
    let sent = false;
    try {
      if (drain.aborted) return;
      jobAbort.signal.throwIfAborted();
      // No request goes out while the volume is full: its result could not be stored either.
      await storage.writable(stopSending);
      sent = true;
      const input: TranscribeInput = {
        jobId: job.id,
        index: chunk.index,
        path: chunk.path,
        durationS: chunk.durationS + (chunk.leadS ?? 0),
        language: job.request.language,
        prompt: sequential ? chainedPrompt(job.request.prompt, await previousText(chunk.index)) : job.request.prompt,
        model: job.request.model,
        ...(job.request.task === 'translate' ? { task: 'translate' as const } : {}),
        ...(job.request.temperature != null ? { temperature: job.request.temperature } : {}),
        signal: jobAbort.signal,
        beforeRequest,
      };
      const hooks: TranscribeHooks = {
        onAttempt: (attempt) =>
          note(chunk.index, { status: 'sending', attempts: attempt, nextTryAt: null, errorCode: null }),
        onRetry: ({ delayMs, code }) =>
          note(chunk.index, {
            status: 'retrying',
            nextTryAt: new Date(deps.now().getTime() + delayMs).toISOString(),
            errorMessage: code ?? null,
          }),
        onWaiting: ({ reason, until }) =>
          note(chunk.index, {
            status: 'retrying',
            nextTryAt: until === null ? null : new Date(until).toISOString(),
            errorCode: 'PROVIDER_UNAVAILABLE',
            errorMessage: reason,
          }),
      };
      const result = await deps.transcribe(input, hooks);
      await notes;
      // The paid result is only in memory until this write: it waits out a full volume, and shutdown's drain too
      // (only the runner's final abort ends the wait; the chunk is then sent again at the next start).
      await save(
        'chunk result',
        () =>
          store.updateChunk(job.id, chunk.index, {
            status: 'done',
            result,
            errorCode: null,
            errorMessage: null,
            nextTryAt: null,
          }),
        jobAbort.signal,
      );
      settled.set(chunk.index, chunk);
      clog.debug({ segments: result.segments.length }, 'chunk transcribed');
      followUps.push(
        reportProgress().catch((err: unknown) => clog.warn({ err: errorMessage(err) }, 'progress not stored')),
      );
    } catch (err) {
      // Stopped by cancel, shutdown or another chunk's job-fatal error: the chunk stays pending for a resume.
      if (jobAbort.signal.aborted || (drain.aborted && (!sent || (isAppError(err) && err.code === 'CANCELLED'))))
        return;
      if (isFatalForJob(err) || err instanceof StorageWaitExceeded) {
        clog.error({ err }, 'chunk failed; the job cannot go on');
        jobAbort.abort(err);
        return;
      }
      const code = isAppError(err) ? err.code : 'CHUNK_FAILED';
      clog.warn({ err, code }, 'chunk failed');
      await notes;
      try {
        await save(
          'chunk failure',
          () =>
            store.updateChunk(job.id, chunk.index, {
              status: 'failed',
              errorCode: code,
              errorMessage: errorMessage(err),
              nextTryAt: null,
            }),
          jobAbort.signal,
        );
        settled.set(chunk.index, chunk);
      } catch (saveErr) {
        if (jobAbort.signal.aborted) return;
        if (saveErr instanceof StorageWaitExceeded) jobAbort.abort(saveErr);
        else throw saveErr;
      }
    } finally {
      followUps.push(finishChunk(handle, chunk));
    }
  };

  /** The text of the chunk before, stored whether it was done in this run or before a restart. */
  const previousText = async (index: number): Promise<string | null> => {
    if (index === 0) return null;
    return (await store.getChunk(job.id, index - 1))?.result?.text ?? null;
  };

  /** Chunks finish concurrently: raisePercent only raises, so two of these landing in either order leave the higher. */
  const reportProgress = async () => {
    const view = await store.pollView(job.id);
    if (!view) return;
    const { job: current, chunks: states } = view;
    const p = computeProgress({
      status: current.status,
      durationS: current.audio.duration_s,
      chunksTotal: current.chunksTotal,
      chunks: states,
      previousPercent: current.percent,
      transcribingStartedAt: current.transcribingStartedAt ? Date.parse(current.transcribingStartedAt) : null,
      now: deps.now().getTime(),
    });
    await storage.attempt('progress', () => store.raisePercent(job.id, p.percent));
  };

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
