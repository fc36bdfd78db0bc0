import { openAsBlob } from 'node:fs';
import path from 'node:path';
import ISO6391 from 'iso-639-1';
import OpenAI from 'openai';
import type { Logger } from 'pino';
import { openAIError, openAIRateLimitHint, type HeaderReader } from './errors.ts';
import { chunkFileOptions, createChunkFileFetch } from './file-fetch.ts';
import { createModelsCheck } from './models-check.ts';
import type { ModelInfo } from '../../models.ts';
import { OPENAI_MODELS, openAIModel } from './models.ts';
import type { ChunkResult, Segment, TranscribeInput, TranscriptionProvider, Word } from '../../types.ts';

export interface OpenAIProviderOptions {
  logger: Logger;
  apiKey: string;
  /** An OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1. @default the SDK's (api.openai.com) */
  baseURL?: string;
  /** Per request, upload included. @default 600000 */
  timeoutMs?: number;
  /** A ready client (tests); apiKey/baseURL/timeoutMs are then ignored. */
  client?: OpenAI;
  /** Reads an HTTP-date Retry-After. @default Date.now */
  now?: () => number;
  /** The models this server serves (a backend's declaration). @default OpenAI's table (OPENAI_MODELS) */
  models?: readonly ModelInfo[];
}

/** Whisper's verbose_json names the language ("english"); the rest of the service speaks ISO-639-1. */
export function normalizeLanguage(value: string | null | undefined): string | null {
  if (!value) return null;
  const v = value.trim().toLowerCase();
  if (ISO6391.validate(v)) return v;
  const code = ISO6391.getCode(v);
  return code === '' ? null : code;
}

function clampSegment(s: Segment, max: number): Segment {
  const start = Math.min(Math.max(s.start, 0), max);
  return { start, end: Math.min(Math.max(s.end, start), max), text: s.text };
}

/** verbose_json's words, inside the chunk, blank ones dropped. */
function chunkWords(words: readonly Word[], max: number): Word[] {
  return words
    .map((w) => {
      const { start, end } = clampSegment({ start: w.start, end: w.end, text: '' }, max);
      return { start, end, word: w.word.trim() };
    })
    .filter((w) => w.word !== '');
}

export function createOpenAIProvider(options: OpenAIProviderOptions): TranscriptionProvider {
  const { logger } = options;
  const client =
    options.client ??
    new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      // Our retry policy owns retries (the SDK would also retry insufficient_quota); SDK retries stay off.
      maxRetries: 0,
      timeout: options.timeoutMs ?? 600_000,
      // Sends a chunk file without a fresh buffer per piece (see file-fetch.ts); other requests as before.
      fetch: createChunkFileFetch(),
    });

  const now = options.now ?? Date.now;
  const declared = options.models;
  const modelInfo = (id: string): ModelInfo => declared?.find((m) => m.id === id) ?? openAIModel(id);

  async function transcribe(input: TranscribeInput): Promise<ChunkResult> {
    try {
      return await send(input);
    } catch (err) {
      // Nothing past the provider sees the SDK's classes: the retry policy reads the neutral facts.
      throw openAIError(err, now());
    }
  }

  /** Reports a used-up rate limit that a successful answer's headers announce. */
  function reportRateLimit(input: TranscribeInput, headers: HeaderReader): void {
    const hint = openAIRateLimitHint(headers);
    if (hint !== undefined) input.onRateLimit?.(hint);
  }

  async function send(input: TranscribeInput): Promise<ChunkResult> {
    const model = modelInfo(input.model);
    // Streamed from the chunk file rather than read into memory: with several chunks in flight (up to 25 MiB each)
    // the copies were the service's peak RSS. The file stays unchanged until its result is stored, so a retry, which
    // opens it again, sends the same bytes. The Blob gives the SDK the file's name and size; the chunk file fetch sends
    // its bytes from the path in `request`.
    const file = new File([await openAsBlob(input.path)], path.basename(input.path));
    const request = { signal: input.signal, fetchOptions: chunkFileOptions(input.path) };
    const base = {
      file,
      model: input.model,
      ...(input.prompt ? { prompt: input.prompt } : {}),
      ...(input.temperature != null ? { temperature: input.temperature } : {}),
    };
    const log = logger.child({ jobId: input.jobId, chunk: input.index });
    // A duration: performance.now() is monotonic, where Date.now() would move with a wall clock step.
    const started = performance.now();
    const took = () => Math.round(performance.now() - started);
    const max = input.durationS > 0 ? input.durationS : Infinity;
    if (input.task === 'translate') {
      // The translations endpoint has no language field (the output is English) and no word times.
      const { data: res, response } = await client.audio.translations
        .create({ ...base, response_format: 'verbose_json' }, request)
        .withResponse();
      reportRateLimit(input, response.headers);
      log.debug({ model: input.model, bytes: file.size, ms: took() }, 'openai translation done');
      return verboseResult(res, 'en', input.durationS, max);
    }
    const transcribeBase = { ...base, ...(input.language ? { language: input.language } : {}) };
    if (model.segmentTimes) {
      // Word times wherever the model declares them (the seams and word exports use them); whisper servers that
      // lack them answer 400 to the field, so only there.
      const granularities = model.wordTimes ? { timestamp_granularities: ['word' as const, 'segment' as const] } : {};
      const { data: res, response } = await client.audio.transcriptions
        .create({ ...transcribeBase, ...granularities, response_format: 'verbose_json' }, request)
        .withResponse();
      reportRateLimit(input, response.headers);
      log.debug({ model: input.model, bytes: file.size, ms: took() }, 'openai transcription done');
      return verboseResult(res, normalizeLanguage(res.language) ?? input.language, input.durationS, max);
    }
    const { data: res, response } = await client.audio.transcriptions
      .create({ ...transcribeBase, response_format: 'json' }, request)
      .withResponse();
    reportRateLimit(input, response.headers);
    log.debug({ model: input.model, bytes: file.size, ms: took() }, 'openai transcription done');
    return chunkResult(res.text, input.language, input.durationS);
  }

  // The platform fetch, as the lazy engine's check at start (models-check.ts): one check, loaded SDK or not.
  const check = createModelsCheck({ apiKey: options.apiKey, baseURL: options.baseURL });

  return { name: 'openai', models: (declared ?? OPENAI_MODELS).map((m) => m.id), transcribe, check };
}

/** A verbose_json answer (transcription or translation): its segments, and its words when it gave them. */
function verboseResult(
  res: { text: string; segments?: readonly Segment[]; words?: readonly Word[] },
  language: string | null,
  durationS: number,
  max: number,
): ChunkResult {
  if (res.segments === undefined) return chunkResult(res.text, language, durationS);
  const segments = res.segments
    .map((s) => clampSegment({ start: s.start, end: s.end, text: s.text.trim() }, max))
    .filter((s) => s.text !== '');
  const words = res.words === undefined ? undefined : chunkWords(res.words, max);
  return { text: res.text.trim(), language, segments, ...(words ? { words } : {}), timing: 'segment' };
}

function chunkResult(text: string, language: string | null, durationS: number): ChunkResult {
  const t = text.trim();
  return {
    text: t,
    language,
    segments: t === '' ? [] : [{ start: 0, end: Math.max(durationS, 0), text: t }],
    timing: 'chunk',
  };
}
