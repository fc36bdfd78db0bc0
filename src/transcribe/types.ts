import type { ErrorCode } from '../errors.ts';
import type { RateLimitHint } from './provider-error.ts';
import type { ProviderName } from './providers/index.ts';

export type { ProviderName };

/** A timed piece of text. Chunk-relative in ChunkResult, absolute in Transcript. */
export interface Segment {
  start: number;
  end: number;
  text: string;
}

/** One word with the engine's own times: chunk-relative in ChunkResult, absolute in Transcript. */
export interface Word {
  start: number;
  end: number;
  word: string;
}

export interface ChunkResult {
  text: string;
  language: string | null;
  segments: Segment[];
  /** The engine's word times, when it gives them (pocketsphinx, whisper with word granularity); absent otherwise. */
  words?: Word[];
  /** 'segment' when the provider gave segment times, 'chunk' when the whole chunk is one segment. */
  timing: 'segment' | 'chunk';
}

export interface TranscribeInput {
  jobId: string;
  index: number;
  path: string;
  durationS: number;
  language: string | null;
  prompt: string | null;
  model: string;
  /** 'translate' asks for English text whatever is spoken; absent means transcribe. */
  task?: 'transcribe' | 'translate';
  /** The job's sampling temperature, for engines that take one. */
  temperature?: number | null;
  signal: AbortSignal;
  /**
   * Called in the limiter slot right before each request to the engine leaves; it may abort `signal`, and the
   * request then does not leave (the job's runner found it no longer holds the job).
   */
  beforeRequest?: () => void;
  /** Called when a successful answer says the account's rate limit is used up, so everyone can pause. */
  onRateLimit?: (hint: RateLimitHint) => void;
}

export interface ProviderCheck {
  status: 'ok' | 'degraded' | 'down';
  detail: string;
  /** Set when the provider cannot take work (PROVIDER_AUTH, PROVIDER_UNAVAILABLE, ...). */
  code?: ErrorCode;
}

export interface TranscriptionProvider {
  readonly name: ProviderName;
  readonly models: readonly string[];
  /** Throws a ProviderError (or an AppError) for the engine's failures, never the engine's own error types. */
  transcribe(input: TranscribeInput): Promise<ChunkResult>;
  /** Whether the provider can take work now (key valid, server reachable, binary and model present). */
  check(signal?: AbortSignal): Promise<ProviderCheck>;
  /** Work is coming (an upload began): load what the first request needs, in the background. Never throws. */
  prepare?(): void;
}

export interface TranscriptSegment extends Segment {
  chunk: number;
}

export interface TranscriptWord extends Word {
  chunk: number;
}

export interface Transcript {
  job_id: string;
  text: string;
  language: string | null;
  duration_s: number;
  segments: TranscriptSegment[];
  /**
   * 'segment': times come from the provider's segments. 'chunk': the model gives none (gpt-4o-transcribe), so
   * each chunk is one segment spanning the chunk and finer cue times are estimated. 'mixed': some of each.
   * Absent in transcripts stored before it existed.
   */
  timing?: 'segment' | 'chunk' | 'mixed';
  /** The engine's word times, absolute, overlaps said once; present only when every transcribed chunk had them. */
  words?: TranscriptWord[];
}
