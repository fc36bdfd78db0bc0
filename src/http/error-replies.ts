import { AppError, isAppError } from '../errors.ts';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>;
  validationContext?: string;
}

function isFastifyLikeError(err: unknown): err is FastifyLikeError {
  return err instanceof Error && (typeof (err as FastifyLikeError).code === 'string' || Array.isArray((err as FastifyLikeError).validation));
}

/** Fastify and @fastify/multipart error codes, mapped onto the contract's stable codes. */
const FRAMEWORK_CODES: Record<string, (err: FastifyLikeError) => AppError> = {
  FST_REQ_FILE_TOO_LARGE: () => new AppError('FILE_TOO_LARGE', 'The file is larger than this server accepts.'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new AppError('FILE_TOO_LARGE', 'The request body is larger than this server accepts.'),
  FST_FILES_LIMIT: () => new AppError('INVALID_FIELD', 'Send exactly one `file` part.', { details: { field: 'file' } }),
  FST_PARTS_LIMIT: () => new AppError('INVALID_FIELD', 'The form has too many parts.', { details: { field: 'form' } }),
  FST_FIELDS_LIMIT: () => new AppError('INVALID_FIELD', 'The form has too many fields.', { details: { field: 'form' } }),
  FST_PROTO_VIOLATION: () => new AppError('INVALID_FIELD', 'A form field has a forbidden name.', { details: { field: 'form' } }),
  FST_INVALID_JSON_FIELD_ERROR: () =>
    new AppError('INVALID_FIELD', 'A form field sent as application/json is not valid JSON.', { details: { field: 'form' } }),
  FST_INVALID_MULTIPART_CONTENT_TYPE: () =>
    new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new AppError('FILE_MISSING', 'Send the audio as multipart/form-data with a `file` part.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new AppError('INVALID_FIELD', 'The body is not valid JSON.', { details: { field: 'body' } }),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new AppError('INVALID_FIELD', 'The JSON body is empty.', { details: { field: 'body' } }),
  FST_ERR_NOT_FOUND: () => new AppError('NOT_FOUND', 'No such route.'),
};

/** Whatever was thrown, as the AppError the client sees. Unknown errors become INTERNAL (the handler hides their text). */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (isFastifyLikeError(err)) {
    if (err.validation) {
      const first = err.validation[0];
      const field = String(first?.params?.missingProperty ?? first?.instancePath?.replace(/^\//, '') ?? err.validationContext ?? 'request');
      return new AppError('INVALID_FIELD', `Invalid ${err.validationContext ?? 'request'}: ${err.message}`, {
        details: { field: field === '' ? (err.validationContext ?? 'request') : field },
      });
    }
    const mapped = err.code ? FRAMEWORK_CODES[err.code] : undefined;
    if (mapped) return mapped(err);
    if (err.statusCode === 413) return new AppError('FILE_TOO_LARGE', 'The request is larger than this server accepts.');
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return new AppError('INVALID_FIELD', err.message, { details: { field: 'request' } });
    }
  }
  return new AppError('INTERNAL', 'Internal server error.', { cause: err });
}

export function errorBody(err: AppError): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  const hide = err.code === 'INTERNAL';
  return {
    error: {
      code: err.code,
      message: hide ? 'Internal server error. The incident was logged; try again later.' : err.message,
      ...(err.details && !hide ? { details: err.details } : {}),
    },
  };
}
