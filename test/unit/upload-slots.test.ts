import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import { createUploadSlots } from '../../src/http/routes/upload-slots.ts';

/** What a refusal says to the client: code, status, Retry-After and details. */
function refusal(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return isAppError(err)
      ? { code: err.code, status: err.statusCode, retry: err.retryAfterS, details: err.details }
      : err;
  }
  return 'not refused';
}

describe('upload slots per key', () => {
  it('refuses the slot past the bound with RATE_LIMITED and Retry-After, per holder, and takes one again once given back', () => {
    const slots = createUploadSlots({ maxPerHolder: 2, maxBytesPerHolder: 1_000, retryAfterS: 7 });
    const a1 = slots.take('a', null);
    slots.take('a', null);
    expect(refusal(() => slots.take('a', null))).toEqual({
      code: 'RATE_LIMITED',
      status: 429,
      retry: 7,
      details: { reason: 'concurrent_uploads', limit: 2 },
    });
    // Another holder is not affected.
    slots.take('b', null);
    a1.release();
    // Giving a slot back twice frees only one.
    a1.release();
    slots.take('a', null);
    expect(() => slots.take('a', null)).toThrow(/At most 2 uploads/);
  });

  it('bounds the bytes a holder reserves, declared up front or grown as a body arrives, and gives them back', () => {
    const slots = createUploadSlots({ maxPerHolder: 10, maxBytesPerHolder: 1_000, retryAfterS: 7 });
    const declared = slots.take('a', 600);
    const bytesRefused = {
      code: 'RATE_LIMITED',
      status: 429,
      retry: 7,
      details: { reason: 'concurrent_upload_bytes', limit_bytes: 1_000 },
    };
    // Declared: refused before anything is read.
    expect(refusal(() => slots.take('a', 401))).toEqual(bytesRefused);
    // Without a length: it grows as it arrives, and is refused when it would pass the bound.
    const chunked = slots.take('a', null);
    chunked.grow(300);
    chunked.grow(400);
    expect(refusal(() => chunked.grow(401))).toEqual(bytesRefused);
    // A refused growth keeps the reservation as it was; shrinking is not growth.
    chunked.grow(100);
    expect(refusal(() => slots.take('a', 1))).toEqual(bytesRefused);
    // Another holder has its own bound.
    slots.take('b', 1_000).release();
    declared.release();
    declared.release();
    // Only the 400 of the chunked one are left: 600 fit again, 601 do not.
    expect(refusal(() => slots.take('a', 601))).toEqual(bytesRefused);
    const again = slots.take('a', 600);
    chunked.release();
    again.release();
    // A released slot's growth counts for nothing.
    chunked.grow(1_000);
    slots.take('a', 1_000);
  });
});
