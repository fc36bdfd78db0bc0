import type { Static } from 'typebox';
import { Type } from './json-schema.ts';
import { JOB_STAGES, JOB_STATUSES } from '../jobs/types.ts';
import { CUE_MODES, TRANSCRIPT_FORMATS, type TranscriptFormat } from '../transcribe/formats.ts';
import { PROVIDER_NAMES } from '../transcribe/providers/index.ts';
import { UPLOAD_FORM_EXAMPLE } from './examples.ts';
import { ERROR_CODES, ErrorBody, nullable, stringEnum } from './response-schemas.ts';

/**
 * The HTTP contract (docs/api.md is the guide around it) as JSON Schema, written once: Fastify validates requests with it,
 * serializes responses with it (fast-json-stringify), the handlers are typed from it, and @fastify/swagger turns
 * it into the OpenAPI document at /docs/json. Here the jobs' part (the resource, transcript, queries, the upload
 * form); the error body and response entries are in response-schemas.ts, the health answers in health-schemas.ts,
 * OpenAI's audio API in openai/schemas.ts.
 */

const Audio = Type.Object({
  filename: Type.String(),
  size_bytes: Type.Integer(),
  duration_s: Type.Number(),
  format: Type.String(),
  codec: Type.String(),
  sample_rate: Type.Integer(),
  channels: Type.Integer(),
});

const Estimate = Type.Object({
  cost_usd: Type.Number({
    description:
      "USD at the model's price per minute for the most audio the chunks send: the recording's duration and, at " +
      'every planned cut, the overlap the chunk after it repeats (sent and billed twice where a cut finds no pause).',
  }),
  provider: stringEnum(PROVIDER_NAMES),
  model: Type.String(),
});

const Progress = Type.Object({
  chunks_total: Type.Integer(),
  chunks_done: Type.Integer(),
  chunks_failed: Type.Integer(),
  chunks_retrying: Type.Integer(),
  percent: Type.Number({ description: 'Never goes down; 100 only once completed.' }),
  eta_s: nullable(Type.Number()),
  audio_s_done: Type.Number(),
  chunks_pending: Type.Integer(),
  chunks_sending: Type.Integer(),
  /** The chunks between two attempts (lowest index first, at most MAX_RETRYING_SHOWN of job-resource.ts). */
  retrying: Type.Array(
    Type.Object({
      chunk: Type.Integer(),
      attempts: Type.Integer(),
      next_try_at: nullable(Type.String({ format: 'date-time' })),
      reason: nullable(Type.String()),
    }),
  ),
  /**
   * Set while the job's chunks are held by something other than their own retry: the provider's circuit
   * (`provider_circuit_open`) or a full data volume (`disk_full`, until the next check for space).
   */
  waiting: nullable(Type.Object({ reason: Type.String(), until: nullable(Type.String({ format: 'date-time' })) })),
});

/**
 * additionalProperties: fields added to the resource later are passed through rather than silently dropped by
 * the serializer; the ones listed here are serialized by the compiled fast path.
 */
export const JobResource = Type.Object(
  {
    id: Type.String({ description: 'Unguessable (>= 96 random bits).' }),
    status: stringEnum(JOB_STATUSES),
    stage: nullable(stringEnum(JOB_STAGES)),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    completed_at: nullable(Type.String({ format: 'date-time' })),
    key_name: nullable(Type.String({ description: 'Name of the API key that created the job (null in open mode).' })),
    audio: Audio,
    progress: Progress,
    estimate: Estimate,
    detected_language: Type.Optional(
      nullable(
        Type.String({
          description:
            'ISO-639-1 code of the language the backend reported for the first transcribed chunk (its detection when ' +
            'the job asked for none, language=auto); null before then, or when the model reports none.',
        }),
      ),
    ),
    error: nullable(Type.Object({ code: stringEnum(ERROR_CODES), message: Type.String() })),
    webhook: nullable(
      Type.Object(
        {
          status: stringEnum(['pending', 'delivered', 'failed'] as const),
          attempts: Type.Integer({ minimum: 0 }),
          last_status_code: nullable(Type.Integer()),
          last_error: nullable(Type.String()),
          next_attempt_at: nullable(Type.String({ format: 'date-time' })),
        },
        { description: 'Delivery of the signed POST to callback_url (null without one); pending while the job runs.' },
      ),
    ),
    links: Type.Object({ self: Type.String(), transcript: Type.String() }),
  },
  { $id: 'JobResource', title: 'Job', additionalProperties: true },
);
/** The job as the API and the webhooks show it (job-resource.ts builds it): the schema's own static type. */
export type JobResource = Static<typeof JobResource>;

export const JobList = Type.Object({
  items: Type.Array(Type.Ref('JobResource')),
  next_cursor: nullable(Type.String()),
});

export const DryRunEstimate = Type.Object(
  {
    dry_run: Type.Literal(true),
    audio: Audio,
    estimate: Estimate,
    chunks_planned: Type.Integer(),
  },
  { additionalProperties: true },
);

export const Transcript = Type.Object(
  {
    job_id: Type.String(),
    text: Type.String(),
    language: nullable(Type.String()),
    duration_s: Type.Number(),
    segments: Type.Array(
      Type.Object(
        {
          start: Type.Number({ description: 'Seconds from the start of the recording.' }),
          end: Type.Number(),
          text: Type.String(),
          chunk: Type.Integer({ description: 'The chunk the segment came from.' }),
        },
        { additionalProperties: true },
      ),
    ),
    words: Type.Optional(
      Type.Array(
        Type.Object(
          {
            start: Type.Number({ description: 'Seconds from the start of the recording.' }),
            end: Type.Number(),
            word: Type.String(),
            chunk: Type.Integer(),
          },
          { additionalProperties: true },
        ),
        {
          description:
            "The backend's own word times, absolute, words said twice in an overlap kept once; present only when the " +
            'model gives word times (every transcribed chunk had them).',
        },
      ),
    ),
    timing: Type.Optional(
      stringEnum(['segment', 'chunk', 'mixed'] as const, {
        description:
          'segment: times come from the provider. chunk: the model gives none, so each chunk is one segment and cue times are ' +
          'estimated. mixed: some of each. Absent in transcripts stored before it existed.',
      }),
    ),
  },
  { title: 'Transcript', additionalProperties: true },
);

export const JobIdParams = Type.Object({
  id: Type.String({ description: 'A job id (job_...).', examples: ['job_V1StGXR8_Z5jdHi6B-myTw'] }),
});

/** Query defaults: Fastify's validator fills them in, the handlers fall back to the same constant. */
export const DEFAULT_LIST_LIMIT = 20;
export const DEFAULT_TRANSCRIPT_FORMAT: TranscriptFormat = 'json';

export const ListQuery = Type.Object({
  status: Type.Optional(stringEnum(JOB_STATUSES)),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIST_LIMIT })),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'next_cursor of the previous page.' })),
});

export const TranscriptQuery = Type.Object({
  format: Type.Optional(stringEnum(TRANSCRIPT_FORMATS, { default: DEFAULT_TRANSCRIPT_FORMAT })),
  partial: Type.Optional(
    stringEnum(['true', 'false', '1', '0'] as const, { description: 'Before completion, the chunks finished so far.' }),
  ),
  cues: Type.Optional(
    stringEnum(CUE_MODES, {
      default: 'segments',
      description:
        "vtt and srt: `words` makes one cue per word from the backend's word times (transcript `words`); a transcript " +
        'without them falls back to segment cues.',
    }),
  ),
});

/** The multipart form of POST /v1/jobs, for the document only: the route streams and validates it itself. */
export const UploadForm = Type.Object(
  {
    file: Type.String({ format: 'binary', description: 'The audio recording.' }),
    language: Type.Optional(
      Type.String({
        description:
          "ISO-639-1 code, or `auto` (the same as leaving it out): the backend detects it (the job's " +
          '`detected_language`). A code the chosen model does not recognise: 400 INVALID_FIELD.',
      }),
    ),
    prompt: Type.Optional(Type.String()),
    model: Type.Optional(
      Type.String({
        description:
          'Any model a configured backend serves (default: the configured default model); the job goes to that ' +
          'backend. Another id: 400 INVALID_FIELD with `details.models` listing the known ones.',
      }),
    ),
    metadata: Type.Optional(Type.String({ description: 'A JSON object, at most 16 KiB.' })),
    callback_url: Type.Optional(
      Type.String({
        format: 'uri',
        description:
          "Where the signed POST goes when the job ends (needs the server's WEBHOOK_SECRET): http or https, a " +
          'public host (unless WEBHOOK_ALLOW_PRIVATE), port 80 or 443 (unless WEBHOOK_PORTS allows others). ' +
          'Otherwise: 400 INVALID_FIELD naming why.',
      }),
    ),
    max_cost_usd: Type.Optional(
      Type.String({
        description: 'A positive number: the upload is refused when the estimate (overlap included) is above it.',
      }),
    ),
    dry_run: Type.Optional(
      stringEnum(['true', 'false', '1', '0'] as const, { description: 'true: answer the estimate, keep nothing.' }),
    ),
    context: Type.Optional(
      stringEnum(['none', 'sequential'] as const, {
        description: 'sequential: each chunk is prompted with the text before it.',
      }),
    ),
  },
  { examples: [UPLOAD_FORM_EXAMPLE] },
);

export const UploadHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'No control characters. A repeat with the same key returns the same job.',
      examples: ['upload-2025-06-01-interview'],
    }),
  ),
});

/** Schemas referenced by $ref from routes: added once with app.addSchema. */
export const SHARED_SCHEMAS = [ErrorBody, JobResource] as const;
