import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ChunkStream, SlicedChunk } from '../chunker/types.ts';
import { errorMessage, isAppError } from '../errors.ts';
import { StorageWaitExceeded } from '../resources/storage-guard.ts';
import type { TranscribeHooks } from '../transcribe/chunk-outcome.ts';
import { chainedPrompt } from '../transcribe/context-prompt.ts';
import type { TranscribeInput } from '../transcribe/types.ts';
import type { ChunkPatch } from './job-store.ts';
import type { PipelineDeps, RunSignals, Save } from './pipeline-run.ts';
import { computeProgress } from './progress.ts';
import { RunLostError } from './run-fence.ts';
import type { ChunkRecord, JobRecord } from './types.ts';

export type Span = Pick<ChunkRecord, 'startS' | 'durationS'>;

/** What one run of the pipeline shares with each chunk it sends. */
export interface ChunkStepContext {
  job: JobRecord;
  deps: Pick<PipelineDeps, 'store' | 'storage' | 'transcribe' | 'now'>;
  signals: Pick<RunSignals, 'drain' | 'held'>;
  /** Aborted by cancel or by a chunk's job-fatal error: the rest of the job stops at once. */
  jobAbort: AbortController;
  /** Ends a chunk's waits before its request leaves: jobAbort or shutdown. */
  stopSending: AbortSignal;
  /** Context chaining: the previous chunk's text goes with each request as its prompt. */
  sequential: boolean;
  save: Save;
  /** Where a chunk is marked settled once its result or failure is stored, so a restarted slicing skips it. */
  settled: Map<number, Span>;
  /**
   * What a chunk leaves to do once its result is stored (its file removed, the job's percent raised): done after
   * its pool slot is free, so the next request does not wait for it; awaited before the job moves on.
   */
  followUps: Array<Promise<unknown>>;
  log: Logger;
}

/** A chunk error that ends the whole job (bad key, exhausted quota), as the transcriber marks it. */
function isFatalForJob(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { fatalForJob?: unknown }).fatalForJob === true;
}

/** A chunk the job is done with: the slicer may cut further ahead, and its file goes. */
export async function finishChunk(handle: ChunkStream, chunk: SlicedChunk): Promise<void> {
  handle.release(chunk.index);
  await rm(chunk.path, { force: true });
}

/**
 * One chunk's turn in a job's run: sent to the transcriber, its result (or its failure) stored, the job's percent
 * raised. A job-fatal error aborts the rest of the job; cancel and shutdown leave the chunk pending for a resume.
 */
export function createChunkStep(ctx: ChunkStepContext): (handle: ChunkStream, chunk: SlicedChunk) => Promise<void> {
  const { job, deps, signals, jobAbort, stopSending, sequential, save, settled, followUps, log } = ctx;
  const { store, storage } = deps;
  const { drain } = signals;

  /** Right before a request leaves: a run that no longer holds the job stops here, the request unsent. */
  const beforeRequest = () => {
    if (signals.held && !signals.held()) jobAbort.abort(new RunLostError('its hold on the job ran out unrenewed'));
  };

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

  return transcribeChunk;
}
