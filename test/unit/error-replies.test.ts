import { describe, expect, it } from 'vitest';
import { errorBody, toAppError } from '../../src/http/error-replies.ts';

/** An error as a library throws it: a message, a string code, an HTTP status. */
function thrown(message: string, code: string, statusCode: number): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

describe('toAppError', () => {
  it("passes on the text of Fastify's and its plugins' own 4xx refusals", () => {
    const body = errorBody(toAppError(thrown('Body is not valid: expected a digit', 'FST_ERR_SOMETHING_NEW', 400)));
    expect(body).toEqual({
      error: { code: 'INVALID_FIELD', message: 'Body is not valid: expected a digit', details: { field: 'request' } },
    });
  });

  it("does not pass on another library's text for an error that carries a 4xx", () => {
    const leak = 'connect to db.internal:5432 as chunkscribe failed; bucket cs-prod-uploads';
    for (const code of ['ECONNREFUSED', 'InvalidAccessKeyId', 'ERR_SOMETHING']) {
      const body = errorBody(toAppError(thrown(leak, code, 403)));
      expect(body).toEqual({
        error: { code: 'INVALID_FIELD', message: 'The request is not valid.', details: { field: 'request' } },
      });
      expect(JSON.stringify(body)).not.toContain('db.internal');
    }
  });

  it('hides the text of anything else as INTERNAL', () => {
    const body = errorBody(toAppError(new Error('secret path /var/lib/chunkscribe')));
    expect(body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(body)).not.toContain('/var/lib');
  });
});
