import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, isAppError, type ErrorCode } from '../errors.ts';
import type { Services } from './services.ts';

// Not `import http from 'node:http'`: an ESM import of node:http reads all its exports, and the lazy WebSocket
// ones load Node's bundled undici (~12 MiB RSS for an idle service, docs/performance.md); the CommonJS object does not.
const http = process.getBuiltinModule('node:http');

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>;
  validationContext?: string;
}

function isFastifyLikeError(err: unknown): err is FastifyLikeError {
  return (
    err instanceof Error &&
    (typeof (err as FastifyLikeError).code === 'string' || Array.isArray((err as FastifyLikeError).validation))
  );
}

/** Fastify and @fastify/multipart error codes, mapped onto the contract's stable codes. */
const FRAMEWORK_CODES: Record<string, (err: FastifyLikeError) => AppError> = {
  FST_REQ_FILE_TOO_LARGE: () => new AppError('FILE_TOO_LARGE', 'The file is larger than this server accepts.'),
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    new AppError('FILE_TOO_LARGE', 'The request body is larger than this server accepts.'),
  FST_FILES_LIMIT: () => new AppError('INVALID_FIELD', 'Send exactly one `file` part.', { details: { field: 'file' } }),
  FST_PARTS_LIMIT: () => new AppError('INVALID_FIELD', 'The form has too many parts.', { details: { field: 'form' } }),
  FST_FIELDS_LIMIT: () =>
    new AppError('INVALID_FIELD', 'The form has too many fields.', { details: { field: 'form' } }),
  FST_PROTO_VIOLATION: () =>
    new AppError('INVALID_FIELD', 'A form field has a forbidden name.', { details: { field: 'form' } }),
  FST_INVALID_JSON_FIELD_ERROR: () =>
    new AppError('INVALID_FIELD', 'A form field sent as application/json is not valid JSON.', {
      details: { field: 'form' },
    }),
  FST_INVALID_MULTIPART_CONTENT_TYPE: () =>
    new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () =>
    new AppError('INVALID_FIELD', 'The body is not valid JSON.', { details: { field: 'body' } }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new AppError('INVALID_FIELD', 'The JSON body is empty.', { details: { field: 'body' } }),
  FST_ERR_NOT_FOUND: () => new AppError('NOT_FOUND', 'No such route.'),
  // From Fastify's frameworkErrors: a path whose percent-encoding does not decode names no route at all.
  FST_ERR_BAD_URL: () =>
    new AppError('INVALID_FIELD', 'The URL path is not valid percent-encoded UTF-8.', { details: { field: 'url' } }),
  // A path parameter (a job id) longer than any id this server gives.
  FST_ERR_MAX_PARAM_LENGTH: () => new AppError('NOT_FOUND', 'No such job.'),
};

/** Whatever was thrown, as the AppError the client sees. Unknown errors become INTERNAL (the handler hides their text). */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (isFastifyLikeError(err)) {
    if (err.validation) {
      const first = err.validation[0];
      const field = String(
        first?.params?.missingProperty ?? first?.instancePath?.replace(/^\//, '') ?? err.validationContext ?? 'request',
      );
      return new AppError('INVALID_FIELD', `Invalid ${err.validationContext ?? 'request'}: ${err.message}`, {
        details: { field: field === '' ? (err.validationContext ?? 'request') : field },
      });
    }
    const mapped = err.code ? FRAMEWORK_CODES[err.code] : undefined;
    if (mapped) return mapped(err);
    if (err.statusCode === 413)
      return new AppError('FILE_TOO_LARGE', 'The request is larger than this server accepts.');
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      // Fastify's and its plugins' own refusals say what was wrong with the request; another library's error
      // that happens to carry a 4xx may say anything about the server behind it (a host, a path, a key name).
      const own = err.code?.startsWith('FST_') ?? false;
      return new AppError('INVALID_FIELD', own ? err.message : 'The request is not valid.', {
        details: { field: 'request' },
      });
    }
  }
  return new AppError('INTERNAL', 'Internal server error.', { cause: err });
}

export function errorBody(err: AppError): {
  error: { code: string; message: string; details?: Record<string, unknown> };
} {
  const hide = err.code === 'INTERNAL';
  return {
    error: {
      code: err.code,
      message: hide ? 'Internal server error. The incident was logged; try again later.' : err.message,
      ...(err.details && !hide ? { details: err.details } : {}),
    },
  };
}

/**
 * Refusals that are the service protecting itself as designed (pressure, a full job pool, a disk too small for
 * the job), not faults: under load there is one per refused request, so they are warnings, not errors.
 */
const EXPECTED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['SERVER_BUSY', 'INSUFFICIENT_STORAGE']);

export interface ErrorReplierOptions {
  events: Pick<Services['events'], 'uploadRefused'>;
  /** Whether the request was an upload (its refusals are counted by code). */
  isUpload(request: FastifyRequest): boolean;
  /** The body in the routes' error shape: the service's own, or OpenAI's on its audio routes. */
  body(err: AppError): unknown;
}

/**
 * An error handler: whatever was thrown as an AppError, logged at the level its kind deserves, counted when it
 * refused an upload, with Retry-After when it says when to retry, answered in the given shape.
 */
export function errorReplier(options: ErrorReplierOptions) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(err);
    if (options.isUpload(request)) options.events.uploadRefused(appError.code);
    // `reason`, not `msg`: pino writes the message as `msg`, and a second `msg` key makes the line ambiguous JSON.
    if (EXPECTED_REFUSALS.has(appError.code))
      request.log.warn({ code: appError.code, reason: appError.message }, 'request refused');
    else if (appError.statusCode >= 500) request.log.error({ err, code: appError.code }, 'request failed');
    else request.log.info({ code: appError.code, reason: appError.message }, 'request rejected');
    if (appError.retryAfterS !== undefined) reply.header('retry-after', String(Math.ceil(appError.retryAfterS)));
    return reply.code(appError.statusCode).send(options.body(appError));
  };
}

/**
 * The answer to a request Node's HTTP parser refused (a malformed request line, headers too large) or that did not
 * arrive in time (headers past the headers timeout, the request past REQUEST_TIMEOUT_MS); null when there is
 * nobody to answer.
 */
export function clientErrorAnswer(code: string | undefined): AppError | null {
  if (code === 'ECONNRESET') return null;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new AppError('UPLOAD_TOO_SLOW', 'The request did not arrive in time; send it over a steadier connection.', {
      retryable: true,
      details: { reason: 'request_timeout' },
    });
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new AppError('INVALID_FIELD', 'The request headers are larger than this server accepts.', {
      details: { field: 'headers' },
    });
  }
  return new AppError('INVALID_FIELD', 'The request is not valid HTTP/1.1.', { details: { field: 'request' } });
}

/**
 * Fastify's clientErrorHandler: the contract's error shape for what never reaches Fastify, written straight to
 * the socket, which is then closed (the connection's state is unknown).
 */
export function clientErrorHandler(log: FastifyBaseLogger): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    const answer = socket.destroyed ? null : clientErrorAnswer(err.code);
    if (answer) {
      log.debug({ errCode: err.code, code: answer.code }, 'client error');
      // As Node's own handler does: a response already under way on this connection (a pipelined request's
      // parse error) must not get another one written into it.
      const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (socket.writable && inFlight?.headersSent !== true) {
        const body = JSON.stringify(errorBody(answer));
        socket.write(
          `HTTP/1.1 ${answer.statusCode} ${http.STATUS_CODES[answer.statusCode] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
    }
    socket.destroy(err);
  };
}
