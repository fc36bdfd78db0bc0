import type { ErrorCode } from '../errors.ts';
import { renderTranscript } from '../transcribe/formats.ts';
import type { Transcript } from '../transcribe/types.ts';
import type { HealthReport } from './health-report.ts';
import { healthView } from './health-view.ts';

/**
 * Example bodies for the OpenAPI document (one per request and response body). The linter checks each against
 * its schema, so an example that drifts from the contract fails the OpenAPI test.
 */

const JOB_ID = 'job_V1StGXR8_Z5jdHi6B-myTw';
const LINKS = { self: `/v1/jobs/${JOB_ID}`, transcript: `/v1/jobs/${JOB_ID}/transcript` };
const AUDIO = {
  filename: 'interview.mp3',
  size_bytes: 57_600_512,
  duration_s: 3600.03,
  format: 'mp3',
  codec: 'mp3',
  sample_rate: 44100,
  channels: 2,
};
const ESTIMATE = { cost_usd: 0.36, provider: 'openai', model: 'whisper-1' };

export const JOB_EXAMPLE = {
  id: JOB_ID,
  status: 'processing',
  stage: 'transcribing',
  created_at: '2025-06-01T09:30:00.000Z',
  updated_at: '2025-06-01T09:31:12.000Z',
  completed_at: null,
  key_name: 'alice',
  audio: AUDIO,
  progress: {
    chunks_total: 6,
    chunks_done: 2,
    chunks_failed: 0,
    chunks_retrying: 1,
    percent: 38.5,
    eta_s: 95,
    audio_s_done: 1200,
    chunks_pending: 1,
    chunks_sending: 2,
    retrying: [
      { chunk: 3, attempts: 1, next_try_at: '2025-06-01T09:31:14.000Z', reason: 'rate limited by the provider (429)' },
    ],
    waiting: null,
  },
  estimate: ESTIMATE,
  detected_language: 'en',
  error: null,
  webhook: { status: 'pending', attempts: 0, last_status_code: null, last_error: null, next_attempt_at: null },
  links: LINKS,
};

/** A fresh job as POST /v1/jobs answers it. */
export const ACCEPTED_JOB_EXAMPLE = {
  ...JOB_EXAMPLE,
  status: 'queued',
  stage: null,
  updated_at: JOB_EXAMPLE.created_at,
  detected_language: null,
  progress: {
    ...JOB_EXAMPLE.progress,
    chunks_done: 0,
    chunks_retrying: 0,
    percent: 0,
    eta_s: null,
    audio_s_done: 0,
    chunks_pending: 0,
    chunks_sending: 0,
    retrying: [],
  },
};

export const JOB_LIST_EXAMPLE = { items: [JOB_EXAMPLE], next_cursor: 'eyJjIjoiMjAyNS0wNi0wMVQwOTozMDowMC4wMDBaIn0' };

export const DRY_RUN_EXAMPLE = { dry_run: true, audio: AUDIO, estimate: ESTIMATE, chunks_planned: 6 };

export const UPLOAD_FORM_EXAMPLE = {
  file: '(the bytes of interview.mp3)',
  language: 'en',
  prompt: 'An interview about glaciers with Dr. Ada Lindqvist.',
  metadata: '{"episode":42}',
  callback_url: 'https://hooks.example.net/chunkscribe',
  max_cost_usd: '1.50',
  dry_run: 'false',
  context: 'sequential',
};

export const TRANSCRIPT_EXAMPLE: Transcript = {
  job_id: JOB_ID,
  text: 'Welcome back to the show. Today we talk about glaciers.',
  language: 'en',
  duration_s: 3600.03,
  segments: [
    { start: 0, end: 2.4, text: 'Welcome back to the show.', chunk: 0 },
    { start: 2.9, end: 5.6, text: 'Today we talk about glaciers.', chunk: 0 },
  ],
  words: [
    ['Welcome', 0, 0.5],
    ['back', 0.5, 0.8],
    ['to', 0.8, 0.9],
    ['the', 0.9, 1.1],
    ['show.', 1.1, 2.4],
    ['Today', 2.9, 3.3],
    ['we', 3.3, 3.5],
    ['talk', 3.5, 3.9],
    ['about', 3.9, 4.3],
    ['glaciers.', 4.3, 5.6],
  ].map(([word, start, end]) => ({ word: String(word), start: Number(start), end: Number(end), chunk: 0 })),
  timing: 'segment',
};

/** The same transcript as each format renders it, so the text examples cannot disagree with the renderer. */
export const TRANSCRIPT_TEXT_EXAMPLES = {
  txt: renderTranscript(TRANSCRIPT_EXAMPLE, 'txt').body,
  srt: renderTranscript(TRANSCRIPT_EXAMPLE, 'srt').body,
  vtt: renderTranscript(TRANSCRIPT_EXAMPLE, 'vtt').body,
};

/** A short job followed from the start: what GET /v1/jobs/{id}/events writes (heartbeat comments aside). */
export const JOB_EVENTS_EXAMPLE = [
  'id: 0\nevent: progress\ndata: {"status":"processing","stage":"transcribing","percent":0,"chunks_total":2,"chunks_done":0,"chunks_failed":0,"eta_s":null,"audio_s_done":0}\n',
  'id: 1\nevent: text\ndata: {"chunk":0,"start":0,"end":9.5,"text":"Welcome to the weekly sync."}\n',
  'id: 1\nevent: progress\ndata: {"status":"processing","stage":"transcribing","percent":50,"chunks_total":2,"chunks_done":1,"chunks_failed":0,"eta_s":9,"audio_s_done":10}\n',
  ': heartbeat\n',
  'id: 2\nevent: text\ndata: {"chunk":1,"start":10.2,"end":18.4,"text":" First item: the release."}\n',
  'id: 2\nevent: progress\ndata: {"status":"completed","stage":null,"percent":100,"chunks_total":2,"chunks_done":2,"chunks_failed":0,"eta_s":0,"audio_s_done":20}\n',
  'id: 2\nevent: end\ndata: {"status":"completed","error":null}\n',
].join('\n');

/** The readiness report of a process whose provider's circuit is open, as the operator sees it. */
const HEALTH_REPORT: HealthReport = {
  status: 'degraded',
  components: {
    ffmpeg: { status: 'ok', detail: 'ffmpeg version 6.1.1' },
    ffprobe: { status: 'ok', detail: 'ffprobe version 6.1.1' },
    provider: { status: 'degraded', detail: 'circuit open: 5 consecutive failures (503)', reason: 'circuit_open' },
    store: { status: 'ok', detail: 'sqlite answers' },
    disk: { status: 'ok', detail: '78.3 GiB free' },
    memory: { status: 'ok', detail: 'rss 142 MiB, system free 5.2 GiB' },
    queue: {
      status: 'ok',
      detail: '2 jobs running, 1 waiting; 3 requests in flight, 0 waiting for a token',
      load: { jobs_running: 2, jobs_waiting: 1, requests_in_flight: 3, requests_waiting: 0 },
    },
    job_dirs: { status: 'ok', detail: '3 of 32 leased, 0.41 of 50.00 GiB' },
  },
};

/** The same report in each caller's view, cut by the function the routes use. */
export const HEALTH_EXAMPLES = {
  public: healthView(HEALTH_REPORT, 'public'),
  tenant: healthView(HEALTH_REPORT, 'tenant'),
  operator: healthView(HEALTH_REPORT, 'operator'),
};

/** /health/ready answering 503 because the store is down, as a tenant sees it. */
export const HEALTH_DOWN_EXAMPLE = healthView(
  {
    status: 'down',
    components: {
      ...HEALTH_REPORT.components,
      store: { status: 'down', detail: 'postgresql: connection refused', reason: 'unreachable' },
    },
  },
  'tenant',
);

export const HEALTH_CONFIG_EXAMPLE = {
  provider: 'openai',
  model: 'whisper-1',
  openai: { apiKey: '(set)', baseURL: '(sdk default)' },
  apiKeys: 2,
  metricsToken: '(set)',
};

export const METRICS_EXAMPLE = [
  '# HELP chunkscribe_jobs_ended_total Jobs that ended in this process, by status.',
  '# TYPE chunkscribe_jobs_ended_total counter',
  'chunkscribe_jobs_ended_total{status="completed"} 12',
  '',
].join('\n');

/** One example error body per code: what a client of each route may see. */
export const ERROR_EXAMPLES: Record<ErrorCode, { message: string; details?: Record<string, unknown> }> = {
  UNAUTHORIZED: { message: 'Send a valid API key as `Authorization: Bearer <key>`.' },
  NOT_FOUND: { message: `No job "${JOB_ID}".` },
  FILE_MISSING: { message: 'The form has no `file` part: attach the audio as `file`.' },
  INVALID_FIELD: { message: 'Invalid querystring: must be <= 100', details: { field: 'limit' } },
  FILE_TOO_LARGE: { message: 'The file is larger than 2147483648 bytes.', details: { max_bytes: 2147483648 } },
  UPLOAD_TOO_SLOW: {
    message: 'The upload sent nothing for 30 s; resend it over a steadier connection.',
    details: { reason: 'stalled', idle_ms: 30000 },
  },
  UNSUPPORTED_MEDIA: {
    message: 'The uploaded file is empty: attach an audio recording.',
    details: { reason: 'empty_file' },
  },
  MEDIA_CORRUPT: { message: 'No audio in the file can be decoded; re-encode it or upload another copy.' },
  DURATION_OUT_OF_RANGE: {
    message: 'The recording is 25920 s long; this server accepts at most 21600 s. Split it into shorter files.',
    details: { duration_s: 25920.04, max_duration_s: 21600 },
  },
  BUDGET_EXCEEDED: {
    message:
      'The estimated cost $0.3600 is above your max_cost_usd ($0.2); raise max_cost_usd or send a shorter recording.',
    details: { estimate_usd: 0.36, max_cost_usd: 0.2, limit: 'request' },
  },
  IDEMPOTENCY_KEY_REUSED: {
    message:
      'This Idempotency-Key was already used for a different request (other file or fields); use a new key for a new upload.',
  },
  JOB_NOT_COMPLETED: {
    message: 'The job is processing; its transcript is ready when it is completed (or ask with partial=true).',
    details: { status: 'processing' },
  },
  RATE_LIMITED: { message: 'At most 10 uploads a minute; retry in 42 seconds.' },
  SERVER_BUSY: {
    message: 'The server is under memory pressure; retry later.',
    details: { resource: 'memory', level: 'elevated' },
  },
  INSUFFICIENT_STORAGE: {
    message: 'The recording needs more working disk space than this server has; split it into shorter files.',
    details: { resource: 'disk' },
  },
  PROVIDER_AUTH: {
    message: "The transcription provider rejects this server's credentials; the operator must fix the API key.",
    details: { provider: 'openai' },
  },
  PROVIDER_QUOTA: {
    message: 'The transcription provider account is out of quota; the operator must top it up.',
    details: { provider: 'openai' },
  },
  PROVIDER_REJECTED: { message: 'The provider refused the request: model not found.' },
  PROVIDER_UNAVAILABLE: {
    message: 'The transcription provider is unavailable; retry later.',
    details: { provider: 'openai' },
  },
  CHUNK_FAILED: { message: 'Chunk 3 failed after 5 attempts (server-error).' },
  CANCELLED: { message: 'The job was cancelled.' },
  INTERNAL: { message: 'Internal server error. The incident was logged; try again later.' },
};
