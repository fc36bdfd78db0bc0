import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { openAIErrorBody } from '../../src/http/openai/errors.ts';
import { answerOptions, readFacadeForm, type Task } from '../../src/http/openai/form.ts';
import { languageName, renderOpenAI, type RenderInput } from '../../src/http/openai/render.ts';
import type { ModelListing, ValidatedRequest } from '../../src/http/services.ts';
import type { Transcript } from '../../src/transcribe/types.ts';

const MODELS: ModelListing[] = [
  {
    id: 'whisper-1',
    provider: 'openai',
    default: true,
    translation: true,
    segmentTimes: true,
    wordTimes: true,
    languages: null,
  },
  {
    id: 'gpt-4o-transcribe',
    provider: 'openai',
    default: false,
    translation: false,
    segmentTimes: false,
    wordTimes: false,
    languages: null,
  },
];

/** The service's own validator as a stub: model must be listed, language two letters; records what it was given. */
function deps(seen: Array<Record<string, string>> = []) {
  return {
    models: () => MODELS,
    validateFields(fields: Record<string, string>): ValidatedRequest {
      seen.push(fields);
      const model = fields.model ?? 'whisper-1';
      if (!MODELS.some((m) => m.id === model))
        throw new AppError('INVALID_FIELD', 'bad model', { details: { field: 'model' } });
      const request = {
        language: fields.language ?? null,
        prompt: fields.prompt ?? null,
        model,
        metadata: null,
        callback_url: null,
        max_cost_usd: null,
        context: 'none' as const,
      };
      return { request, dryRun: false };
    },
  };
}

function form(fields: Record<string, string>, lists: Record<string, string[]> = {}) {
  return { filename: 'a.wav', sizeBytes: 1, sha256: 'x', fields, lists };
}

function refusedField(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return (err as AppError).code === 'INVALID_FIELD' ? (err as AppError).details?.field : err;
  }
  return 'accepted';
}

describe('the OpenAI form', () => {
  it('maps model, prompt and language to the service validator; auto or absent language means detection', () => {
    const seen: Array<Record<string, string>> = [];
    readFacadeForm(
      form({ model: 'whisper-1', prompt: 'p', language: 'auto', response_format: 'json' }),
      'transcribe',
      deps(seen),
    );
    readFacadeForm(form({ language: 'de' }), 'transcribe', deps(seen));
    expect(seen).toEqual([{ model: 'whisper-1', prompt: 'p' }, { language: 'de' }]);
  });

  it('stores the task, the temperature and the word times in the job request only when asked', () => {
    const plain = readFacadeForm(form({}), 'transcribe', deps()).request;
    expect(plain).not.toHaveProperty('task');
    expect(plain).not.toHaveProperty('temperature');
    expect(plain).not.toHaveProperty('word_timestamps');
    const asked = readFacadeForm(
      form(
        { response_format: 'verbose_json', temperature: '0.4' },
        { 'timestamp_granularities[]': ['segment', 'word'] },
      ),
      'transcribe',
      deps(),
    ).request;
    expect(asked).toMatchObject({ temperature: 0.4, word_timestamps: true });
    expect(readFacadeForm(form({}), 'translate', deps()).request.task).toBe('translate');
  });

  it.each<[Task, Record<string, string>, Record<string, string[]>, string]>([
    ['transcribe', { response_format: 'docx' }, {}, 'response_format'],
    ['transcribe', { temperature: '1.01' }, {}, 'temperature'],
    ['transcribe', { temperature: '-0' }, {}, 'temperature'],
    ['transcribe', { temperature: 'warm' }, {}, 'temperature'],
    ['transcribe', { stream: 'yes' }, {}, 'stream'],
    ['transcribe', { metadata: '{}' }, {}, 'metadata'],
    ['transcribe', { file: 'text' }, {}, 'file'],
    ['transcribe', {}, { 'timestamp_granularities[]': ['word'] }, 'timestamp_granularities[]'],
    [
      'transcribe',
      { response_format: 'verbose_json' },
      { 'timestamp_granularities[]': ['char'] },
      'timestamp_granularities[]',
    ],
    [
      'transcribe',
      { model: 'gpt-4o-transcribe', response_format: 'verbose_json' },
      { 'timestamp_granularities[]': ['word'] },
      'timestamp_granularities[]',
    ],
    ['transcribe', { model: 'nope' }, {}, 'model'],
    ['translate', { language: 'de' }, {}, 'language'],
    ['translate', { stream: 'true' }, {}, 'stream'],
    ['translate', { model: 'gpt-4o-transcribe' }, {}, 'model'],
    [
      'translate',
      { response_format: 'verbose_json' },
      { 'timestamp_granularities[]': ['segment'] },
      'timestamp_granularities[]',
    ],
  ])('%s refuses %j %j naming %s', (task, fields, lists, field) => {
    expect(refusedField(() => readFacadeForm(form(fields, lists), task, deps()))).toBe(field);
  });

  it('reads the answer options: json by default; stream; words only with verbose_json', () => {
    expect(answerOptions(form({}), 'transcribe')).toEqual({ format: 'json', stream: false, words: false });
    expect(answerOptions(form({ stream: 'true', response_format: 'text' }), 'transcribe')).toEqual({
      format: 'text',
      stream: true,
      words: false,
    });
    expect(
      answerOptions(form({ response_format: 'verbose_json' }, { 'timestamp_granularities[]': ['word'] }), 'transcribe')
        .words,
    ).toBe(true);
  });
});

const TRANSCRIPT: Transcript = {
  job_id: 'job_x',
  text: 'Hello there. General Kenobi.',
  language: 'en',
  duration_s: 7.5,
  timing: 'segment',
  segments: [
    { start: 0, end: 2, text: 'Hello there.', chunk: 0 },
    { start: 4, end: 7, text: 'General Kenobi.', chunk: 1 },
  ],
  words: [
    { start: 0.1, end: 0.5, word: 'Hello', chunk: 0 },
    { start: 0.6, end: 1.2, word: 'there.', chunk: 0 },
  ],
};
const input = (over: Partial<RenderInput>): RenderInput => ({
  transcript: TRANSCRIPT,
  format: 'json',
  task: 'transcribe',
  words: false,
  temperature: 0,
  requestedLanguage: null,
  ...over,
});

describe('the OpenAI renderers', () => {
  it('json: text and usage in whole seconds', () => {
    expect(JSON.parse(renderOpenAI(input({})))).toEqual({
      text: TRANSCRIPT.text,
      usage: { type: 'duration', seconds: 8 },
    });
  });

  it('text ends with a newline; srt and vtt are the transcript formats', () => {
    expect(renderOpenAI(input({ format: 'text' }))).toBe(`${TRANSCRIPT.text}\n`);
    expect(renderOpenAI(input({ format: 'srt' }))).toMatch(/^1\n00:00:00,000 --> 00:00:02,000\nHello there\.\n/);
    expect(renderOpenAI(input({ format: 'vtt' }))).toMatch(/^WEBVTT\n/);
  });

  it('verbose_json: Whisper segment fields with neutral values, words only when asked', () => {
    const v = JSON.parse(renderOpenAI(input({ format: 'verbose_json', temperature: 0.3 }))) as Record<string, unknown>;
    expect(v).toMatchObject({ task: 'transcribe', language: 'english', duration: 7.5, text: TRANSCRIPT.text });
    expect(v.segments).toEqual([
      {
        id: 0,
        seek: 0,
        start: 0,
        end: 2,
        text: ' Hello there.',
        tokens: [],
        temperature: 0.3,
        avg_logprob: 0,
        compression_ratio: 1,
        no_speech_prob: 0,
      },
      {
        id: 1,
        seek: 0,
        start: 4,
        end: 7,
        text: ' General Kenobi.',
        tokens: [],
        temperature: 0.3,
        avg_logprob: 0,
        compression_ratio: 1,
        no_speech_prob: 0,
      },
    ]);
    expect(v).not.toHaveProperty('words');
    const w = JSON.parse(renderOpenAI(input({ format: 'verbose_json', words: true }))) as { words: unknown };
    expect(w.words).toEqual([
      { word: 'Hello', start: 0.1, end: 0.5 },
      { word: 'there.', start: 0.6, end: 1.2 },
    ]);
    const none = JSON.parse(
      renderOpenAI(input({ format: 'verbose_json', words: true, transcript: { ...TRANSCRIPT, words: undefined } })),
    );
    expect(none.words).toEqual([]);
  });

  it('names the language as Whisper does; a translation is English', () => {
    expect(languageName('de')).toBe('german');
    expect(languageName(null)).toBe('unknown');
    expect(languageName('xx')).toBe('unknown');
    const fr = { ...TRANSCRIPT, language: null };
    expect(
      JSON.parse(renderOpenAI(input({ format: 'verbose_json', transcript: fr, requestedLanguage: 'fr' }))).language,
    ).toBe('french');
    expect(JSON.parse(renderOpenAI(input({ format: 'verbose_json', task: 'translate' }))).language).toBe('english');
  });
});

describe("OpenAI's error shape", () => {
  it('type by status, code in lower case or OpenAI own, param from the field, INTERNAL text hidden', () => {
    expect(openAIErrorBody(new AppError('INVALID_FIELD', 'm', { details: { field: 'temperature' } }))).toEqual({
      error: { message: 'm', type: 'invalid_request_error', param: 'temperature', code: 'invalid_field' },
    });
    expect(openAIErrorBody(new AppError('UNAUTHORIZED', 'k')).error).toMatchObject({
      code: 'invalid_api_key',
      param: null,
    });
    expect(openAIErrorBody(new AppError('NOT_FOUND', 'n', { details: { field: 'model' } })).error.code).toBe(
      'model_not_found',
    );
    expect(openAIErrorBody(new AppError('RATE_LIMITED', 'r')).error.type).toBe('rate_limit_error');
    const internal = openAIErrorBody(new AppError('INTERNAL', 'secret path /x/y')).error;
    expect(internal).toMatchObject({ type: 'server_error', code: 'internal' });
    expect(internal.message).not.toContain('secret');
  });
});
