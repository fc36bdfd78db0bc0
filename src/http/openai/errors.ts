import type { AppError } from '../../errors.ts';
import { errorBody } from '../error-replies.ts';

/** OpenAI's error body, which its SDKs turn into their error classes (BadRequestError, AuthenticationError...). */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** OpenAI's `type` for a status: what its SDKs and clients branch on besides the status itself. */
function errorType(status: number): string {
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * An AppError in OpenAI's shape. `code` is the service's stable code in lower case (`file_too_large`), except
 * where OpenAI has its own for the same case (`invalid_api_key`, `model_not_found`); `param` names the form
 * field at fault when there is one. The message is the one the service's own API gives (an INTERNAL error's
 * text stays hidden).
 */
export function openAIErrorBody(err: AppError): OpenAIErrorBody {
  const { message, details } = errorBody(err).error;
  const field = typeof details?.field === 'string' ? details.field : null;
  let code = err.code.toLowerCase();
  if (err.code === 'UNAUTHORIZED') code = 'invalid_api_key';
  if (err.code === 'NOT_FOUND' && field === 'model') code = 'model_not_found';
  return { error: { message, type: errorType(err.statusCode), param: field, code } };
}
