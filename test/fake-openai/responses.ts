import type http from 'node:http';
import { finished } from 'node:stream/promises';
import ISO6391 from 'iso-639-1';
import type { ModelInfo } from '../../src/transcribe/models.ts';
import type { FakeTranscript } from './audio.ts';
import { errorJson } from './faults.ts';
import type { HttpFault } from './faults.ts';

export const JSON_TYPE = { 'content-type': 'application/json' };

/** Reads a body to its end and drops it (a request answered without its content): resolves when the client is done. */
export async function drain(req: http.IncomingMessage): Promise<void> {
  req.resume();
  // A client that went away leaves nothing to wait for.
  await finished(req).catch(() => undefined);
}

export function badRequest(message: string, param: string | null, code: string | null): HttpFault {
  return { status: 400, headers: JSON_TYPE, body: errorJson(message, 'invalid_request_error', param, code) };
}

interface Fields {
  hasFile: boolean;
  model: string | null;
  format: string;
}

/** The 400 OpenAI would send for these fields, or null when they are acceptable. */
export function invalidFields(f: Fields, models: readonly string[], info: ModelInfo | undefined): HttpFault | null {
  if (!f.hasFile) return badRequest("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
  if (!f.model) return badRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (!models.includes(f.model)) return badRequest(`Invalid model ${f.model}.`, 'model', 'invalid_value');
  const formats = allowedFormats(info);
  if (!formats.includes(f.format)) {
    return badRequest(
      `response_format '${f.format}' is not compatible with model '${f.model}'. Use ${formats.map((x) => `'${x}'`).join(' or ')} instead.`,
      'response_format',
      'unsupported_value',
    );
  }
  return null;
}

/** The gpt-4o models answer json/text only; whisper-1 and unlisted models also verbose_json (no srt/vtt here). */
export function allowedFormats(info: ModelInfo | undefined): string[] {
  return info && !info.segmentTimes ? ['json', 'text'] : ['json', 'text', 'verbose_json'];
}

export function tooLong(info: ModelInfo | undefined, durationS: number): HttpFault | null {
  if (!info || durationS <= info.maxSeconds) return null;
  return badRequest(
    `audio duration ${durationS} seconds is longer than ${info.maxSeconds} seconds which is the maximum for this model`,
    null,
    'invalid_value',
  );
}

/**
 * verbose_json's `words` as whisper gives them for timestamp_granularities[]=word: each segment's words, spread
 * evenly over the segment's time, in order and without gaps between segments' words.
 */
export function fakeWords(t: FakeTranscript): Array<{ word: string; start: number; end: number }> {
  return t.segments.flatMap((s) => {
    const words = s.text.split(/\s+/).filter((w) => w !== '');
    const step = (s.end - s.start) / Math.max(1, words.length);
    return words.map((word, i) => ({ word, start: s.start + i * step, end: s.start + (i + 1) * step }));
  });
}

/** What verbose_json may add on request: `words` when the granularities name them. */
export interface VerboseExtras {
  granularities: readonly string[];
  /** The ISO-639-1 code the fake "detects" when the request names no language. @default 'en' */
  detectedLanguage?: string;
}

/** A 200 in the requested format, shaped like OpenAI's. */
export function transcriptionResponse(
  format: string,
  info: ModelInfo | undefined,
  t: FakeTranscript,
  durationS: number,
  language: string | null,
  extras: VerboseExtras = { granularities: [] },
): HttpFault {
  if (format === 'text') return { status: 200, headers: { 'content-type': 'text/plain' }, body: `${t.text}\n` };
  if (format === 'json') {
    const inputTokens = Math.ceil(durationS * 10);
    const outputTokens = t.segments.length * 4;
    const usage =
      info?.segmentTimes === false
        ? {
            type: 'tokens',
            input_tokens: inputTokens,
            output_tokens: outputTokens,
            total_tokens: inputTokens + outputTokens,
          }
        : { type: 'duration', seconds: Math.ceil(durationS) };
    return { status: 200, headers: JSON_TYPE, body: JSON.stringify({ text: t.text, usage }) };
  }
  // Whisper names the language ("english") in verbose_json.
  const spoken = language ?? extras.detectedLanguage ?? 'en';
  const name = ISO6391.getName(spoken).toLowerCase() || 'english';
  const segments = t.segments.map((s, id) => ({
    id,
    seek: 0,
    start: s.start,
    end: s.end,
    text: ` ${s.text}`,
    tokens: [],
    temperature: 0,
    avg_logprob: -0.2,
    compression_ratio: 1.2,
    no_speech_prob: 0.01,
  }));
  return {
    status: 200,
    headers: JSON_TYPE,
    body: JSON.stringify({
      task: 'transcribe',
      language: name,
      duration: durationS,
      text: t.text,
      segments,
      ...(extras.granularities.includes('word') ? { words: fakeWords(t) } : {}),
      usage: { type: 'duration', seconds: Math.ceil(durationS) },
    }),
  };
}

/** A translation's verbose_json: task `translate`, language English. */
export function asTranslation(ok: HttpFault): HttpFault {
  return {
    ...ok,
    body: JSON.stringify({ ...(JSON.parse(ok.body) as object), task: 'translate', language: 'english' }),
  };
}
