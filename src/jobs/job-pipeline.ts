import { rm } from 'node:fs/promises';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { ChunkFormat } from '../chunker/chunk-format.ts';
import type { SlicedChunk } from '../chunker/types.ts';
import { AppError, errorMessage, isAppError } from '../errors.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import { degenerateReason } from '../transcribe/hallucination-guard.ts';
import { stitchTranscript } from '../transcribe/stitcher.ts';
import type { ChunkResult, TranscribeInput } from '../transcribe/types.ts';
import { computeProgress } from './progress.ts';
import type { JobStore } from './store.ts';
import type { ChunkRecord, JobRecord } from './types.ts';

export interface SliceHandleLike {
  chunks: AsyncIterable<SlicedChunk>;
  release(index: number): void;
  done: Promise<{ count: number }>;
}

export interface PipelineDeps {
  store: JobStore;
  dirs: JobDirs;
  slice(opts: {
    input: string;
    demuxer: string;
    outDir: string;
    cutPoints: number[];
    format: ChunkFormat;
    lookahead: number;
    maxDurationS: number;
    /** What the validator measured: output ending short of it is a truncated file, not a short recording. */
    expectedDurationS: number;
    signal: AbortSignal;
  }): SliceHandleLike;
  /** Cut points for a fresh job (the split plan); a resumed job reuses the stored ones. */
  planCuts(job: JobRecord, signal: AbortSignal): Promise<number[]>;
  transcribe(input: TranscribeInput, hooks: TranscribeHooks): Promise<ChunkResult>;
  chunkFormat: ChunkFormat;
  concurrency: number;
  maxDurationS: number;
  maxFailedChunkRatio: number;
  now: () => Date;
}

export interface TranscribeHooks {
  onAttempt?(attempt: number): void;
  onRetry?(info: { attempt: number; delayMs: number; errorClass: string; code?: string }): void;
}

/** Thrown when the service stops before the job finished: the job stays `processing` and resumes at the next start. */
export class ShutdownSignal extends Error {
  constructor() {
    super('service shutting down');
    this.name = 'ShutdownSignal';
  }
}

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
  signals: { abort: AbortSignal; drain: AbortSignal },
  log: Logger,
): Promise<void> {
  const { abort: signal, drain } = signals;
  const { store, dirs } = deps;
  const now = () => deps.now().toISOString();
  store.updateJob(job.id, { status: 'processing', stage: 'slicing', errorCode: null, errorMessage: null });
  // A resumed job's chunk directory was removed when the previous process stopped it.
  await dirs.create(job.id);

  let chunks = store.listChunks(job.id);
  if (chunks.length === 0) {
    const cuts = await deps.planCuts(job, AbortSignal.any([signal, drain]));
    const bounds = [0, ...cuts, job.audio.duration_s];
    bounds.slice(0, -1).forEach((start, i) => store.upsertChunk(job.id, i, start, (bounds[i + 1] as number) - start));
    chunks = store.listChunks(job.id);
    store.updateJob(job.id, { chunksTotal: chunks.length });
  }
  const done = new Map(chunks.filter((c) => c.status === 'done').map((c) => [c.index, c]));
  log.info({ chunks: chunks.length, alreadyDone: done.size }, 'slicing');

  const limit = pLimit(deps.concurrency);
  // A job-fatal chunk error aborts the rest of the job at once, not after every queued chunk has failed too.
  const jobAbort = new AbortController();
  const onAbort = () => jobAbort.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const handle = deps.slice({
    input: dirs.uploadPath(job.id),
    demuxer: job.audio.demuxer,
    outDir: dirs.chunksDir(job.id),
    cutPoints: chunks.slice(1).map((c) => c.startS),
    format: deps.chunkFormat,
    lookahead: Math.max(2, deps.concurrency * 2),
    maxDurationS: deps.maxDurationS,
    expectedDurationS: job.audio.duration_s,
    // On shutdown ffmpeg stops at once; requests in flight are let finish so their paid results are kept.
    signal: AbortSignal.any([jobAbort.signal, drain]),
  });

  const finishChunk = async (chunk: SlicedChunk) => {
    handle.release(chunk.index);
    await rm(chunk.path, { force: true });
  };

  const transcribeChunk = async (chunk: SlicedChunk): Promise<void> => {
    const clog = log.child({ chunk: chunk.index });
    try {
      if (drain.aborted) return;
      jobAbort.signal.throwIfAborted();
      const input: TranscribeInput = {
        jobId: job.id,
        index: chunk.index,
        path: chunk.path,
        durationS: chunk.durationS,
        language: job.request.language,
        prompt: job.request.prompt,
        model: job.request.model,
        signal: jobAbort.signal,
      };
      const hooks: TranscribeHooks = {
        onAttempt: (attempt) => store.updateChunk(job.id, chunk.index, { status: 'sending', attempts: attempt, nextTryAt: null }),
        onRetry: ({ delayMs, code }) =>
          store.updateChunk(job.id, chunk.index, {
            status: 'retrying',
            nextTryAt: new Date(deps.now().getTime() + delayMs).toISOString(),
            errorMessage: code ?? null,
          }),
      };
      let result = await deps.transcribe(input, hooks);
      const suspicious = degenerateReason(result, chunk.durationS);
      if (suspicious) {
        // A prompt is the usual trigger of repetition loops: one more try without it, and the saner answer is kept.
        clog.warn({ reason: suspicious }, 'chunk text looks hallucinated; transcribing it once more without prompt');
        const second = await deps.transcribe({ ...input, prompt: null }, hooks);
        if (degenerateReason(second, chunk.durationS) === null) result = second;
      }
      store.updateChunk(job.id, chunk.index, { status: 'done', result, errorCode: null, errorMessage: null, nextTryAt: null });
      clog.debug({ segments: result.segments.length }, 'chunk transcribed');
      reportProgress();
    } catch (err) {
      // Stopped by cancel, shutdown or another chunk's job-fatal error: the chunk stays pending for a resume.
      if (jobAbort.signal.aborted || (drain.aborted && isAppError(err) && err.code === 'CANCELLED')) return;
      if (isFatalForJob(err)) {
        clog.error({ err }, 'chunk failed; the job cannot go on');
        jobAbort.abort(err);
        return;
      }
      const code = isAppError(err) ? err.code : 'CHUNK_FAILED';
      clog.warn({ err, code }, 'chunk failed');
      store.updateChunk(job.id, chunk.index, { status: 'failed', errorCode: code, errorMessage: errorMessage(err), nextTryAt: null });
    } finally {
      await finishChunk(chunk);
    }
  };

  const reportProgress = () => {
    const current = store.getJob(job.id);
    if (!current) return;
    const p = computeProgress({
      status: current.status,
      durationS: current.audio.duration_s,
      chunksTotal: current.chunksTotal,
      chunks: store.listChunks(job.id),
      previousPercent: current.percent,
      transcribingStartedAt: current.transcribingStartedAt ? Date.parse(current.transcribingStartedAt) : null,
      now: deps.now().getTime(),
    });
    store.raisePercent(job.id, p.percent);
  };

  const pending: Array<Promise<void>> = [];
  let sliced = 0;
  try {
    for await (const chunk of handle.chunks) {
      sliced = chunk.index + 1;
      if (done.has(chunk.index)) {
        await finishChunk(chunk);
        continue;
      }
      store.upsertChunk(job.id, chunk.index, chunk.startS, chunk.durationS);
      if (pending.length === 0) {
        store.updateJob(job.id, { stage: 'transcribing', transcribingStartedAt: job.transcribingStartedAt ?? now() });
      }
      pending.push(limit(() => transcribeChunk(chunk)));
    }
  } catch (err) {
    // Whatever was cut before ffmpeg failed is still transcribed; the job then fails with the slicer's error.
    await Promise.allSettled(pending);
    signal.removeEventListener('abort', onAbort);
    throw jobAbort.signal.aborted ? jobAbort.signal.reason : drain.aborted ? new ShutdownSignal() : err;
  }
  await Promise.allSettled(pending);
  signal.removeEventListener('abort', onAbort);
  if (jobAbort.signal.aborted) throw jobAbort.signal.reason;
  if (drain.aborted) throw new ShutdownSignal();

  store.deleteChunksFrom(job.id, sliced);
  store.updateJob(job.id, { slicingDone: true, chunksTotal: sliced, stage: 'stitching' });
  await dirs.removeChunks(job.id);
  const final = store.listChunks(job.id);
  assertEnoughChunks(final, deps.maxFailedChunkRatio);

  const transcript = stitchTranscript({
    jobId: job.id,
    durationS: job.audio.duration_s,
    chunks: final.map((c) => ({ index: c.index, startS: c.startS, durationS: c.durationS, status: c.status, result: c.result })),
    overlapS: 0,
  });
  store.saveTranscript(job.id, transcript);
  store.updateJob(job.id, { status: 'completed', stage: null, percent: 100, completedAt: now() });
  log.info({ chunks: final.length, failed: final.filter((c) => c.status === 'failed').length }, 'job completed');
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
