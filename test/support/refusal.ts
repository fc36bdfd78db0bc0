import { isAppError } from '../../src/errors.ts';

/** What a refusal says to the client (code, status, Retry-After, details), or 'not refused'; other errors as they are. */
export async function refusal(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return isAppError(err)
      ? { code: err.code, status: err.statusCode, retry: err.retryAfterS, details: err.details }
      : err;
  }
  return 'not refused';
}
