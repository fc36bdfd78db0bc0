import path from 'node:path';
import type { JobResource } from '../http/schemas.ts';
import type { TranscriptFormat } from '../transcribe/formats.ts';
import { readEventStream, type ServerSentEvent } from './event-stream.ts';
import { postMultipart } from './multipart-upload.ts';

/** What the server said went wrong (its stable code and message), or a client-side code for transport failures. */
export class ApiError extends Error {
  readonly code: string;
  /** HTTP status; 0 when no answer came back at all. */
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, status: number, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export interface DryRunEstimate {
  dry_run: true;
  audio: JobResource['audio'];
  estimate: JobResource['estimate'];
  chunks_planned: number;
}

export interface CreateJobInput {
  file: string;
  fields: Record<string, string>;
  idempotencyKey?: string;
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

export interface ApiClient {
  createJob(input: CreateJobInput): Promise<JobResource | DryRunEstimate>;
  getJob(id: string, signal?: AbortSignal): Promise<JobResource>;
  /** The job's live events (GET /v1/jobs/{id}/events), from after `lastEventId`; an error answer throws ApiError. */
  jobEvents(
    id: string,
    opts: { lastEventId: string | null; signal?: AbortSignal | undefined },
  ): Promise<AsyncIterable<ServerSentEvent>>;
  listJobs(query: {
    status?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ items: JobResource[]; next_cursor: string | null }>;
  getTranscript(id: string, format: TranscriptFormat, partial?: boolean): Promise<string>;
  cancelJob(id: string): Promise<void>;
}

export interface ApiClientOptions {
  server: string;
  apiKey?: string | undefined;
  fetchFn?: typeof fetch;
}

/** The contract's error body, or a generic one when a proxy (or anything else) answered with something else. */
export function toApiError(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = parsed.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      const details = e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : undefined;
      return new ApiError(e.code, e.message, status, details);
    }
  } catch {
    // not JSON: fall through to the generic error
  }
  return new ApiError(
    `HTTP_${status}`,
    `The server answered ${status}: ${body.slice(0, 200).trim() || '(empty body)'}`,
    status,
  );
}

function connectionError(server: string, err: unknown): ApiError {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String(cause.code) : '';
  const detail = code || (cause instanceof Error ? cause.message : String(cause));
  return new ApiError(
    'CONNECTION_FAILED',
    `Cannot reach ${server} (${detail}). Is the service running? Set --server or CHUNKSCRIBE_SERVER.`,
    0,
  );
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = options.server.replace(/\/+$/, '');
  const fetchFn = options.fetchFn ?? fetch;
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

  async function call(
    method: string,
    pathAndQuery: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; text: string }> {
    let res: Response;
    try {
      res = await fetchFn(`${base}${pathAndQuery}`, { method, headers: auth, signal: signal ?? null });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw connectionError(base, err);
    }
    const text = await res.text();
    if (!res.ok) throw toApiError(res.status, text);
    return { status: res.status, text };
  }

  return {
    async createJob(input) {
      const headers: Record<string, string> = { ...auth, accept: 'application/json' };
      if (input.idempotencyKey) headers['idempotency-key'] = input.idempotencyKey;
      let res;
      try {
        res = await postMultipart({
          url: new URL(`${base}/v1/jobs`),
          headers,
          file: input.file,
          filename: path.basename(input.file),
          fields: input.fields,
          onProgress: input.onProgress,
          signal: input.signal,
        });
      } catch (err) {
        if (input.signal?.aborted) throw err;
        throw connectionError(base, err);
      }
      if (res.status !== 202 && res.status !== 200) throw toApiError(res.status, res.body);
      return JSON.parse(res.body) as JobResource | DryRunEstimate;
    },

    async getJob(id, signal) {
      return JSON.parse((await call('GET', jobPath(id), signal)).text) as JobResource;
    },

    async jobEvents(id, opts) {
      const headers: Record<string, string> = { ...auth, accept: 'text/event-stream' };
      if (opts.lastEventId !== null) headers['last-event-id'] = opts.lastEventId;
      let res: Response;
      try {
        res = await fetchFn(`${base}${jobPath(id)}/events`, { headers, signal: opts.signal ?? null });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        throw connectionError(base, err);
      }
      if (!res.ok || !res.body) throw toApiError(res.status, await res.text());
      return readEventStream(res.body);
    },

    async listJobs(query) {
      const params = new URLSearchParams();
      if (query.status) params.set('status', query.status);
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      if (query.cursor) params.set('cursor', query.cursor);
      const qs = params.size > 0 ? `?${params}` : '';
      return JSON.parse((await call('GET', `/v1/jobs${qs}`)).text) as {
        items: JobResource[];
        next_cursor: string | null;
      };
    },

    async getTranscript(id, format, partial = false) {
      return (await call('GET', `${jobPath(id)}/transcript?format=${format}${partial ? '&partial=true' : ''}`)).text;
    },

    async cancelJob(id) {
      await call('DELETE', jobPath(id));
    },
  };
}
