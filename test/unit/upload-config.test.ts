import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

const base = { DATA_DIR: '/nonexistent-cs-data', TRANSCRIBE_PROVIDER: 'local' };

describe('upload pace and per-key settings', () => {
  it('defaults to 16 KiB/s over 30 s, 30 s without a byte, and 4 uploads per key', () => {
    const config = loadConfig(base);
    expect(config.uploadPace).toEqual({ minBytesPerS: 16 * 1024, windowMs: 30_000, maxGapMs: 30_000 });
    expect(config.uploadsPerKeyMax).toBe(4);
  });

  it('takes 0 to turn a pace check off, and refuses values out of range by name', () => {
    const off = loadConfig({ ...base, UPLOAD_MIN_BYTES_PER_S: '0', UPLOAD_MAX_GAP_MS: '0', UPLOADS_PER_KEY_MAX: '1' });
    expect(off.uploadPace).toMatchObject({ minBytesPerS: 0, maxGapMs: 0 });
    expect(off.uploadsPerKeyMax).toBe(1);
    for (const [name, value] of [['UPLOADS_PER_KEY_MAX', '0'], ['UPLOAD_RATE_WINDOW_MS', '10'], ['UPLOAD_MAX_GAP_MS', '-1'], ['UPLOAD_MIN_BYTES_PER_S', 'fast']]) {
      expect(() => loadConfig({ ...base, [name as string]: value }), name).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, [name as string]: value }), name).toThrow(new RegExp(name as string));
    }
  });
});
