import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { errorMessage, isAppError } from '../errors.ts';
import { ChunkTranscriptionError, type TranscribeHooks } from './chunk-outcome.ts';
import type { ChunkTranscriber } from './chunk-transcriber.ts';
import type { ChunkPiece, ChunkReshaper } from './chunk-reshaper.ts';
import { degenerateReason } from './hallucination-guard.ts';
import type { Remedy } from './retry-policy.ts';
import type { ChunkResult, TranscribeInput } from './types.ts';

/**
 * What happened beyond plain retries, for whoever counts it (a metrics module subscribes through `onEvent`).
 * `outcome` says whether the chunk's text came out of it.
 */
export type TranscriptionEvent =
  | { type: 'remedy'; remedy: Remedy; jobId: string; chunk: number; outcome: 'recovered' | 'failed' }
  | {
      type: 'hallucination';
      jobId: string;
      chunk: number;
      reason: string;
      /** What was tried last: the same audio without prompt, then the audio cut in two. */
      retry: 'without-prompt' | 'split';
      outcome: 'recovered' | 'kept';
    };

export interface ChunkRemediesOptions {
  transcriber: Pick<ChunkTranscriber, 'transcribe'>;
  reshaper: ChunkReshaper;
  logger: Logger;
  /** How often a refused piece may be halved again: 2 allows up to 4 pieces per chunk. @default 2 */
  maxSplitDepth?: number;
  onEvent?: (event: TranscriptionEvent) => void;
}

/** Below this a piece is too short to carry a sentence; halving it further would only make noise. */
export const MIN_PIECE_S = 1;

interface State {
  reencoded: boolean;
  depth: number;
}

/** A guard retry that fails for a reason that does not end the job (or ffmpeg failing) leaves the first answer. */
function isChunkLocal(err: unknown): boolean {
  if (!isAppError(err) || err.code === 'CANCELLED') return false;
  return !(err instanceof ChunkTranscriptionError && err.fatalForJob);
}

/** The pieces' results as one chunk result: segment times moved by each piece's offset, texts joined. */
export function mergePieces(
  results: ReadonlyArray<{ piece: Pick<ChunkPiece, 'offsetS'>; result: ChunkResult }>,
): ChunkResult {
  return {
    text: results
      .map((r) => r.result.text.trim())
      .filter(Boolean)
      .join(' '),
    language: results.find((r) => r.result.language !== null)?.result.language ?? null,
    segments: results.flatMap(({ piece, result }) =>
      result.segments.map((s) => ({ start: s.start + piece.offsetS, end: s.end + piece.offsetS, text: s.text })),
    ),
    timing: results.every((r) => r.result.timing === 'segment') ? 'segment' : 'chunk',
  };
}

/**
 * The chunk transcriber plus what it cannot do by retrying the same bytes: a chunk refused as undecodable or
 * too short is re-encoded once (another codec, padded); one refused as too large is cut in two, and so on; a
 * chunk whose text looks hallucinated is sent again without prompt, then cut in two. Pieces are sent one after
 * another, inside the chunk's own slot of the job's concurrency.
 */
export function createChunkRemedies(options: ChunkRemediesOptions): ChunkTranscriber {
  const { transcriber, reshaper, logger, maxSplitDepth = 2 } = options;
  const emit = (event: TranscriptionEvent) => options.onEvent?.(event);

  async function transcribeSplit(input: TranscribeInput, hooks: TranscribeHooks, state: State): Promise<ChunkResult> {
    const pieces = await reshaper.split(input.path, input.durationS, 2, input.signal);
    try {
      const results: Array<{ piece: ChunkPiece; result: ChunkResult }> = [];
      for (const piece of pieces) {
        const pieceInput = { ...input, path: piece.path, durationS: piece.durationS };
        results.push({ piece, result: await withRemedies(pieceInput, hooks, { ...state, depth: state.depth + 1 }) });
      }
      return mergePieces(results);
    } finally {
      await Promise.all(pieces.map((p) => rm(p.path, { force: true })));
    }
  }

  async function withRemedies(input: TranscribeInput, hooks: TranscribeHooks, state: State): Promise<ChunkResult> {
    try {
      return await transcriber.transcribe(input, hooks);
    } catch (err) {
      if (!(err instanceof ChunkTranscriptionError) || err.remedy === null || input.signal.aborted) throw err;
      const log = logger.child({ jobId: input.jobId, chunk: input.index });
      const remedy = err.remedy;
      const canSplit = state.depth < maxSplitDepth && input.durationS >= 2 * MIN_PIECE_S;
      if ((remedy === 're-encode' && state.reencoded) || (remedy === 'split' && !canSplit)) throw err;
      log.warn({ remedy, depth: state.depth, err: err.message }, 'provider refused the chunk; reshaping it');
      try {
        let result: ChunkResult;
        if (remedy === 'split') {
          result = await transcribeSplit(input, hooks, state);
        } else {
          const file = await reshaper.reencode(input.path, input.signal);
          try {
            result = await withRemedies({ ...input, path: file }, hooks, { ...state, reencoded: true });
          } finally {
            await rm(file, { force: true });
          }
        }
        emit({ type: 'remedy', remedy, jobId: input.jobId, chunk: input.index, outcome: 'recovered' });
        log.info({ remedy }, 'reshaped chunk transcribed');
        return result;
      } catch (again) {
        if (input.signal.aborted || (again instanceof ChunkTranscriptionError && again.fatalForJob)) throw again;
        emit({ type: 'remedy', remedy, jobId: input.jobId, chunk: input.index, outcome: 'failed' });
        log.warn({ remedy, err: errorMessage(again) }, 'reshaped chunk failed too');
        // The provider's first refusal says more about the chunk than an ffmpeg error on the way.
        throw again instanceof ChunkTranscriptionError ? again : err;
      }
    }
  }

  /** One guard retry; a chunk-local failure of it keeps the first answer. */
  async function guardRetry(run: () => Promise<ChunkResult>, log: Logger): Promise<ChunkResult | null> {
    try {
      return await run();
    } catch (err) {
      if (!isChunkLocal(err)) throw err;
      log.warn({ err: errorMessage(err) }, 'hallucination guard retry failed; keeping the first answer');
      return null;
    }
  }

  async function transcribe(input: TranscribeInput, hooks: TranscribeHooks = {}): Promise<ChunkResult> {
    const fresh: State = { reencoded: false, depth: 0 };
    const first = await withRemedies(input, hooks, fresh);
    const reason = degenerateReason(first, input.durationS);
    if (reason === null) return first;
    const log = logger.child({ jobId: input.jobId, chunk: input.index });
    const report = (retry: 'without-prompt' | 'split', outcome: 'recovered' | 'kept') =>
      emit({ type: 'hallucination', jobId: input.jobId, chunk: input.index, reason, retry, outcome });

    // A prompt is the usual trigger of repetition loops: one more try without it.
    log.warn({ reason }, 'chunk text looks hallucinated; transcribing it once more without prompt');
    const bare = { ...input, prompt: null };
    const second = await guardRetry(() => withRemedies(bare, hooks, fresh), log);
    if (second !== null && degenerateReason(second, input.durationS) === null) {
      report('without-prompt', 'recovered');
      return second;
    }
    // Loops also come from where the audio was cut: the same audio in two pieces is a different request.
    if (input.durationS >= 2 * MIN_PIECE_S) {
      log.warn({ reason }, 'still degenerate; transcribing the chunk in two pieces');
      const split = await guardRetry(() => transcribeSplit(bare, hooks, { ...fresh, depth: maxSplitDepth }), log);
      if (split !== null && degenerateReason(split, input.durationS) === null) {
        report('split', 'recovered');
        return split;
      }
      report('split', 'kept');
    } else {
      report('without-prompt', 'kept');
    }
    log.warn({ reason }, 'chunk text still looks hallucinated; keeping the first answer');
    return first;
  }

  return { transcribe };
}
