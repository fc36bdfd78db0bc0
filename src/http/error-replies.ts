import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { AppError, isAppError } from '../errors.ts';

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
      return new AppError('INVALID_FIELD', err.message, { details: { field: 'request' } });
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
