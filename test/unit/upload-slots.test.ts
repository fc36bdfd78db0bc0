import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import { createUploadSlots } from '../../src/http/routes/upload-slots.ts';

describe('upload slots per key', () => {
  it('refuses the slot past the bound with RATE_LIMITED and Retry-After, per holder, and takes one again once given back', () => {
    const slots = createUploadSlots({ maxPerHolder: 2, retryAfterS: 7 });
    const a1 = slots.take('a');
    slots.take('a');
    let refused: unknown;
    try {
      slots.take('a');
    } catch (err) {
      refused = err;
    }
    expect(isAppError(refused) && { code: refused.code, status: refused.statusCode, retry: refused.retryAfterS, details: refused.details }).toEqual({
      code: 'RATE_LIMITED',
      status: 429,
      retry: 7,
      details: { reason: 'concurrent_uploads', limit: 2 },
    });
    // Another holder is not affected.
    slots.take('b');
    a1();
    // Giving a slot back twice frees only one.
    a1();
    slots.take('a');
    expect(() => slots.take('a')).toThrow(/At most 2 uploads/);
  });
});
