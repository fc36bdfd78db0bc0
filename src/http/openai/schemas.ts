/**
 * The OpenAI-compatible routes as the OpenAPI document shows them: OpenAI's multipart form, a body per
 * response_format, the stream's events, the models list, and OpenAI's error shape with an example per code.
 */
import type { TSchema } from 'typebox';
import { Type } from '../json-schema.ts';
import { AppError, type ErrorCode } from '../../errors.ts';
import { ERROR_EXAMPLES } from '../examples.ts';
import { responsesByStatus } from '../response-schemas.ts';
import { openAIErrorBody } from './errors.ts';
import { RESPONSE_FORMATS } from './form.ts';

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const OpenAIError = Type.Object({
  error: Type.Object({
    message: Type.String(),
    type: Type.String({ description: 'invalid_request_error, rate_limit_error or server_error.' }),
    param: nullableString,
    code: nullableString,
  }),
});

/** One response per status: OpenAI's error body, with an example of each of the service's codes behind it. */
export function openAIErrorResponses(...codes: ErrorCode[]) {
  return responsesByStatus(codes, (_status, group) => {
    const examples = Object.fromEntries(
      group.map((code) => {
        const field = ERROR_EXAMPLES[code].details?.field;
        const err = new AppError(code, ERROR_EXAMPLES[code].message, {
          ...(typeof field === 'string' ? { details: { field } } : {}),
        });
        return [code, { summary: code, value: openAIErrorBody(err) }];
      }),
    );
    return {
      description: `OpenAI-shaped error (the service's codes, lower case): ${group.join(', ')}`,
      content: { 'application/json': { schema: OpenAIError, examples } },
    };
  });
}

function stringEnum<const T extends readonly string[]>(values: T, description: string) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });
}

const FORM_EXAMPLE = {
  file: '(the bytes of interview.mp3)',
  model: 'whisper-1',
  language: 'en',
  prompt: 'An interview about glaciers.',
  response_format: 'verbose_json',
  temperature: '0',
  'timestamp_granularities[]': ['segment', 'word'],
  stream: 'false',
};

const commonFields = {
  file: Type.String({ format: 'binary', description: 'The recording; any length up to MAX_DURATION_S.' }),
  model: Type.Optional(Type.String({ description: 'A model of GET /v1/models; the default one when absent.' })),
  prompt: Type.Optional(Type.String({ description: 'At most 1000 characters.' })),
  response_format: Type.Optional(stringEnum(RESPONSE_FORMATS, 'The answer body; json when absent.')),
  temperature: Type.Optional(Type.String({ description: 'A number from 0 to 1, for engines that take one.' })),
};

export const TranscriptionForm = Type.Object(
  {
    ...commonFields,
    language: Type.Optional(Type.String({ description: 'ISO-639-1 code; `auto` or absent: detected.' })),
    'timestamp_granularities[]': Type.Optional(
      Type.Array(stringEnum(['segment', 'word'] as const, 'segment, word: words[] in verbose_json.'), {
        description: 'Needs response_format verbose_json; word needs a model with word times.',
      }),
    ),
    stream: Type.Optional(
      stringEnum(['true', 'false'] as const, 'true: text/event-stream, one delta per chunk as it is final.'),
    ),
  },
  { examples: [FORM_EXAMPLE] },
);

export const TranslationForm = Type.Object(commonFields, {
  examples: [{ file: '(the bytes of interview.mp3)', model: 'whisper-1', response_format: 'json' }],
});

const Segment = Type.Object({
  id: Type.Integer(),
  seek: Type.Integer({ description: 'Always 0.' }),
  start: Type.Number(),
  end: Type.Number(),
  text: Type.String(),
  tokens: Type.Array(Type.Integer(), { description: 'Always empty.' }),
  temperature: Type.Number(),
  avg_logprob: Type.Number({ description: 'Always 0.' }),
  compression_ratio: Type.Number({ description: 'Always 1.' }),
  no_speech_prob: Type.Number({ description: 'Always 0.' }),
});
const Usage = Type.Object({ type: Type.Literal('duration'), seconds: Type.Integer() });
const Verbose = Type.Object({
  task: stringEnum(['transcribe', 'translate'] as const, 'What the job did.'),
  language: Type.String({ description: 'In English words, as Whisper writes it: "english".' }),
  duration: Type.Number(),
  text: Type.String(),
  segments: Type.Array(Segment),
  words: Type.Optional(Type.Array(Type.Object({ word: Type.String(), start: Type.Number(), end: Type.Number() }))),
  usage: Usage,
});
const JsonOrVerbose = Type.Union([Type.Object({ text: Type.String(), usage: Usage }), Verbose]);

const VERBOSE_EXAMPLE = {
  task: 'transcribe',
  language: 'english',
  duration: 3.2,
  text: 'Hello there.',
  segments: [
    {
      id: 0,
      seek: 0,
      start: 0,
      end: 3.2,
      text: ' Hello there.',
      tokens: [],
      temperature: 0,
      avg_logprob: 0,
      compression_ratio: 1,
      no_speech_prob: 0,
    },
  ],
  words: [
    { word: 'Hello', start: 0.1, end: 0.5 },
    { word: 'there.', start: 0.6, end: 1.1 },
  ],
  usage: { type: 'duration', seconds: 4 },
};

const JOB_ID_HEADER = Type.String({
  description: 'The job behind the answer, sent before the body: GET /v1/jobs/{id} finds it if the client goes away.',
});

/** The 200 of an audio route: the content type of each response_format, and the event stream. */
export function audioResponse(stream: boolean): Record<string, TSchema | object> {
  return {
    description:
      'When the job ends. The headers come at once (x-job-id); a json body is preceded by keep-alive spaces. A job ' +
      'that fails after that gets the error object in the body and the connection cut before its end.',
    headers: { 'x-job-id': JOB_ID_HEADER },
    content: {
      'application/json': { schema: JsonOrVerbose, example: VERBOSE_EXAMPLE },
      'text/plain': {
        schema: Type.String({ description: 'text, srt or vtt.' }),
        example: '1\n00:00:00,000 --> 00:00:03,200\nHello there.\n',
      },
      ...(stream
        ? {
            'text/event-stream': {
              schema: Type.String({ description: 'transcript.text.delta per chunk, then transcript.text.done.' }),
              example:
                'data: {"type":"transcript.text.delta","delta":"Hello there."}\n\n' +
                'data: {"type":"transcript.text.done","text":"Hello there."}\n\n',
            },
          }
        : {}),
    },
  };
}

export const Model = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer({ description: 'Always 0: not known.' }),
  owned_by: Type.String(),
  default: Type.Boolean({ description: 'The model a request that names none gets.' }),
  translation: Type.Boolean({ description: 'Takes POST /v1/audio/translations.' }),
  word_timestamps: Type.Boolean({ description: 'Gives words[] with timestamp_granularities[]=word.' }),
  languages: Type.Union([Type.Array(Type.String()), Type.Null()], {
    description: 'ISO-639-1 codes it recognises; null: any.',
  }),
});
export const ModelList = Type.Object({ object: Type.Literal('list'), data: Type.Array(Model) });
export const ModelParams = Type.Object({ id: Type.String({ maxLength: 200 }) });

export const MODEL_EXAMPLE = {
  id: 'whisper-1',
  object: 'model',
  created: 0,
  owned_by: 'chunkscribe',
  default: true,
  translation: true,
  word_timestamps: true,
  languages: null,
};
