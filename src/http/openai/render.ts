/**
 * A finished job's transcript in the body and content type OpenAI's audio API gives for each response_format,
 * which is what its SDKs parse: application/json for json and verbose_json (the SDKs parse it), text/plain for
 * text, srt and vtt (the SDKs return the body as a string).
 */
import ISO6391 from 'iso-639-1';
import { renderTranscript } from '../../transcribe/formats.ts';
import type { Transcript } from '../../transcribe/types.ts';
import type { ResponseFormat, Task } from './form.ts';

export const OPENAI_CONTENT_TYPES: Record<ResponseFormat, string> = {
  json: 'application/json',
  verbose_json: 'application/json',
  text: 'text/plain; charset=utf-8',
  srt: 'text/plain; charset=utf-8',
  vtt: 'text/plain; charset=utf-8',
};

export function isJsonFormat(format: ResponseFormat): boolean {
  return OPENAI_CONTENT_TYPES[format] === 'application/json';
}

export interface RenderInput {
  transcript: Transcript;
  format: ResponseFormat;
  task: Task;
  /** Whether words[] was asked for (timestamp_granularities[]=word). */
  words: boolean;
  /** The job's temperature, echoed per segment as Whisper does; 0 when the job set none. */
  temperature: number;
  /** The language the job asked for, when the engine reported none. */
  requestedLanguage: string | null;
}

/** Whisper's verbose_json names the language in English words ("english"); the service keeps ISO-639-1 codes. */
export function languageName(code: string | null): string {
  const name = code === null ? '' : ISO6391.getName(code);
  return name === '' ? 'unknown' : name.toLowerCase();
}

/**
 * verbose_json as Whisper writes it. What the service cannot know of Whisper's decoding is filled with neutral
 * values: `seek` 0, `tokens` [], `avg_logprob` 0, `compression_ratio` 1, `no_speech_prob` 0. Segment texts start
 * with a space, as Whisper's do (clients join them as they come).
 */
function verboseJson(input: RenderInput) {
  const { transcript: t } = input;
  const duration = t.duration_s;
  return {
    task: input.task,
    language: input.task === 'translate' ? 'english' : languageName(t.language ?? input.requestedLanguage),
    duration,
    text: t.text,
    segments: t.segments.map((s, id) => ({
      id,
      seek: 0,
      start: s.start,
      end: s.end,
      text: ` ${s.text}`,
      tokens: [] as number[],
      temperature: input.temperature,
      avg_logprob: 0,
      compression_ratio: 1,
      no_speech_prob: 0,
    })),
    ...(input.words ? { words: (t.words ?? []).map((w) => ({ word: w.word, start: w.start, end: w.end })) } : {}),
    usage: usage(duration),
  };
}

/** OpenAI bills Whisper by the second; the usage block says the same of the recording. */
function usage(durationS: number) {
  return { type: 'duration' as const, seconds: Math.ceil(durationS) };
}

/** The body for `format`; its content type is OPENAI_CONTENT_TYPES[format]. */
export function renderOpenAI(input: RenderInput): string {
  const { transcript: t } = input;
  switch (input.format) {
    case 'json':
      return JSON.stringify({ text: t.text, usage: usage(t.duration_s) });
    case 'verbose_json':
      return JSON.stringify(verboseJson(input));
    case 'text':
      // OpenAI ends the text with a newline.
      return `${t.text}\n`;
    case 'srt':
    case 'vtt':
      return renderTranscript(t, input.format).body;
  }
}
