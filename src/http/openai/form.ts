/**
 * OpenAI's audio request form (`file`, `model`, `language`, `prompt`, `response_format`, `temperature`,
 * `timestamp_granularities[]`, `stream`) read into a job request. Model, language and prompt go through the same
 * validator as POST /v1/jobs; the rest is OpenAI's own and checked here. Every refusal is INVALID_FIELD naming the
 * field, which the facade sends as OpenAI's `param`.
 */
import { AppError } from '../../errors.ts';
import type { JobRequest } from '../../jobs/types.ts';
import type { Received } from '../routes/upload-receive.ts';
import type { ModelListing, ValidatedRequest } from '../services.ts';

export const RESPONSE_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

export type Task = NonNullable<JobRequest['task']>;

/** The form's one repeatable field, as the OpenAI SDKs name an array in a form. */
export const GRANULARITIES_FIELD = 'timestamp_granularities[]';

/** How the answer is given: not part of the job, so a job made here reads like any other in /v1/jobs. */
export interface AnswerOptions {
  format: ResponseFormat;
  stream: boolean;
  words: boolean;
}

/** OpenAI fields this service reads; `chunking_strategy` is taken and ignored (the service always chunks). */
const FIELDS: Record<Task, readonly string[]> = {
  transcribe: ['model', 'language', 'prompt', 'response_format', 'temperature', 'stream', 'chunking_strategy'],
  // OpenAI's translations take no language (the output is English) and do not stream.
  translate: ['model', 'prompt', 'response_format', 'temperature'],
};

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_FIELD', message, { details: { field } });
}

function quote(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

export interface FacadeFormDeps {
  /** The service's own field validator (model, language, prompt), as POST /v1/jobs uses it. */
  validateFields(fields: Record<string, string>): ValidatedRequest;
  models(): readonly ModelListing[];
}

/**
 * How the answer is asked for: response_format, stream, word granularity. Throws INVALID_FIELD for a bad value;
 * read again, for the same form, when a repeated Idempotency-Key answers an earlier job.
 */
export function answerOptions(received: Pick<Received, 'fields' | 'lists'>, task: Task): AnswerOptions {
  const granularities = received.lists[GRANULARITIES_FIELD] ?? [];
  if (task === 'translate' && granularities.length > 0) {
    throw invalid(GRANULARITIES_FIELD, `${GRANULARITIES_FIELD} is not accepted for translations`);
  }
  const format = responseFormat(received.fields.response_format);
  return { format, stream: booleanOf('stream', received.fields.stream), words: wordGranularity(granularities, format) };
}

function checkNames(fields: Record<string, string>, task: Task): void {
  const accepted = FIELDS[task];
  for (const name of Object.keys(fields)) {
    if (name === 'file') throw invalid('file', 'file was sent as a text field; send the audio as a file part');
    if (!accepted.includes(name)) {
      const list = accepted.join(', ');
      throw invalid(name.slice(0, 64), `unknown field ${quote(name)}; the accepted fields are file, ${list}`);
    }
  }
}

/** Reads the form of POST /v1/audio/transcriptions (task transcribe) or /v1/audio/translations (translate). */
export function readFacadeForm(received: Received, task: Task, deps: FacadeFormDeps): ValidatedRequest {
  const { fields } = received;
  checkNames(fields, task);
  const validated = deps.validateFields(ownFields(fields));
  const { words } = answerOptions(received, task);
  const model = deps.models().find((m) => m.id === validated.request.model);
  if (task === 'translate' && model?.translation !== true) {
    throw invalid(
      'model',
      `model ${quote(validated.request.model)} does not translate; use one of: ${translators(deps)}`,
    );
  }
  if (words && model?.wordTimes !== true) {
    throw invalid(
      GRANULARITIES_FIELD,
      `model ${quote(validated.request.model)} gives no word times; ask for segment granularity or use another model`,
    );
  }
  const temperature = temperatureOf(fields.temperature);
  const request: JobRequest = {
    ...validated.request,
    ...(task === 'translate' ? { task } : {}),
    ...(temperature !== null ? { temperature } : {}),
    ...(words ? { word_timestamps: true } : {}),
  };
  return { request, dryRun: false };
}

/** The fields the service's own validator judges, in its terms. */
function ownFields(fields: Record<string, string>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const name of ['model', 'prompt'] as const) if (fields[name] !== undefined) own[name] = fields[name];
  // OpenAI's clients send `auto` (or nothing) for detection; the service's own API says it with no language.
  const language = fields.language?.trim();
  if (language !== undefined && language !== '' && language !== 'auto') own.language = language;
  return own;
}

function translators(deps: FacadeFormDeps): string {
  const ids = deps
    .models()
    .filter((m) => m.translation)
    .map((m) => m.id);
  return ids.length > 0 ? ids.join(', ') : '(none on this server)';
}

function responseFormat(raw: string | undefined): ResponseFormat {
  const v = raw?.trim() ?? '';
  if (v === '') return 'json';
  if ((RESPONSE_FORMATS as readonly string[]).includes(v)) return v as ResponseFormat;
  throw invalid('response_format', `response_format ${quote(v)} is not one of ${RESPONSE_FORMATS.join(', ')}`);
}

/** Whether word times were asked for; as OpenAI does, granularities need verbose_json. */
function wordGranularity(values: readonly string[], format: ResponseFormat): boolean {
  for (const v of values) {
    if (v !== 'segment' && v !== 'word') {
      throw invalid(GRANULARITIES_FIELD, `${GRANULARITIES_FIELD} ${quote(v)} is not "segment" or "word"`);
    }
  }
  if (values.length > 0 && format !== 'verbose_json') {
    throw invalid(GRANULARITIES_FIELD, `${GRANULARITIES_FIELD} needs response_format "verbose_json"`);
  }
  return values.includes('word');
}

/** OpenAI's range, 0 to 1; absent means the engine's own default. */
function temperatureOf(raw: string | undefined): number | null {
  const v = raw?.trim() ?? '';
  if (v === '') return null;
  const n = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 0 && n <= 1)) throw invalid('temperature', `temperature ${quote(v)} is not a number from 0 to 1`);
  return n;
}

function booleanOf(field: string, raw: string | undefined): boolean {
  const v = raw?.trim().toLowerCase() ?? '';
  if (v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw invalid(field, `${field} ${quote(v)} is not a boolean; send true or false`);
}
