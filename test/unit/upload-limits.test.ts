import { describe, expect, it } from 'vitest';
import { createUploadSlots } from '../../src/resources/upload-limits.ts';
import { refusal } from '../support/refusal.ts';

describe('upload slots per key', () => {
  it('refuses the slot past the bound with RATE_LIMITED and Retry-After, per holder, and takes one again once given back', async () => {
    const slots = createUploadSlots({ maxPerHolder: 2, maxBytesPerHolder: 1_000, retryAfterS: 7 });
    const a1 = await slots.take('a', null);
    await slots.take('a', null);
    expect(await refusal(slots.take('a', null))).toEqual({
      code: 'RATE_LIMITED',
      status: 429,
      retry: 7,
      details: { reason: 'concurrent_uploads', limit: 2 },
    });
    // Another holder is not affected.
    await slots.take('b', null);
    await a1.release();
    // Giving a slot back twice frees only one.
    await a1.release();
    await slots.take('a', null);
    await expect(slots.take('a', null)).rejects.toThrow(/At most 2 uploads/);
  });

  it('bounds the bytes a holder reserves, declared up front or grown as a body arrives, and gives them back', async () => {
    const slots = createUploadSlots({ maxPerHolder: 10, maxBytesPerHolder: 1_000, retryAfterS: 7 });
    const declared = await slots.take('a', 600);
    const bytesRefused = {
      code: 'RATE_LIMITED',
      status: 429,
      retry: 7,
      details: { reason: 'concurrent_upload_bytes', limit_bytes: 1_000 },
    };
    // Declared: refused before anything is read.
    expect(await refusal(slots.take('a', 401))).toEqual(bytesRefused);
    // Without a length: it grows as it arrives, and is refused when it would pass the bound.
    const chunked = await slots.take('a', null);
    await chunked.grow(300);
    await chunked.grow(400);
    expect(await refusal(chunked.grow(401))).toEqual(bytesRefused);
    // A refused growth keeps the reservation as it was; shrinking is not growth.
    await chunked.grow(100);
    expect(await refusal(slots.take('a', 1))).toEqual(bytesRefused);
    // Another holder has its own bound.
    await (await slots.take('b', 1_000)).release();
    await declared.release();
    await declared.release();
    // Only the 400 of the chunked one are left: 600 fit again, 601 do not.
    expect(await refusal(slots.take('a', 601))).toEqual(bytesRefused);
    const again = await slots.take('a', 600);
    await chunked.release();
    await again.release();
    // A released slot's growth counts for nothing.
    await chunked.grow(1_000);
    await slots.take('a', 1_000);
  });
});
