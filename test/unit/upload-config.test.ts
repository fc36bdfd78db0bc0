import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

const base = { DATA_DIR: '/nonexistent-cs-data', TRANSCRIBE_PROVIDER: 'local' };

describe('upload pace and per-key settings', () => {
  it('defaults to 16 KiB/s over 30 s, 30 s without a byte, and 4 uploads per key', () => {
    const config = loadConfig(base);
    expect(config.uploadPace).toEqual({ minBytesPerS: 16 * 1024, windowMs: 30_000, maxGapMs: 30_000 });
    expect(config.uploadsPerKeyMax).toBe(4);
    // Half the job directory pool's bytes, but never below an upload of the allowed size.
    expect(config.uploadBytesPerKeyMax).toBe(4 * 1024 ** 3);
    expect(loadConfig({ ...base, MAX_UPLOAD_BYTES: '3000', JOB_DIRS_MAX_BYTES: '4000' }).uploadBytesPerKeyMax).toBe(
      3000,
    );
  });

  it('lets one key of several have half the job directories live, a single key all of them (JOBS_PER_KEY_MAX)', () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `key-${i}-abcdefghijklmnop`).join(',');
    expect(loadConfig({ ...base, API_KEYS: keys(2) }).jobsPerKeyMax).toBe(8);
    expect(loadConfig({ ...base, API_KEYS: keys(3), JOB_DIRS_MAX: '5' }).jobsPerKeyMax).toBe(2);
    expect(loadConfig({ ...base, API_KEYS: keys(2), JOB_DIRS_MAX: '1' }).jobsPerKeyMax).toBe(1);
    // One key has no other key to keep out: the pool is its limit (SERVER_BUSY past it, as before the setting).
    expect(loadConfig({ ...base, API_KEYS: keys(1) }).jobsPerKeyMax).toBe(16);
    expect(loadConfig({ ...base, API_KEYS: keys(1), JOBS_PER_KEY_MAX: '3' }).jobsPerKeyMax).toBe(3);
  });

  it('takes UPLOAD_BYTES_PER_KEY_MAX from MAX_UPLOAD_BYTES to JOB_DIRS_MAX_BYTES, and refuses it outside by name', () => {
    const sized = { ...base, MAX_UPLOAD_BYTES: '1000', JOB_DIRS_MAX_BYTES: '5000' };
    expect(loadConfig({ ...sized, UPLOAD_BYTES_PER_KEY_MAX: '1000' }).uploadBytesPerKeyMax).toBe(1000);
    expect(loadConfig({ ...sized, UPLOAD_BYTES_PER_KEY_MAX: '5000' }).uploadBytesPerKeyMax).toBe(5000);
    for (const value of ['999', '5001', '0', 'lots']) {
      expect(() => loadConfig({ ...sized, UPLOAD_BYTES_PER_KEY_MAX: value }), value).toThrow(
        /UPLOAD_BYTES_PER_KEY_MAX/,
      );
    }
  });

  it('takes 0 to turn a pace check off, and refuses values out of range by name', () => {
    const off = loadConfig({ ...base, UPLOAD_MIN_BYTES_PER_S: '0', UPLOAD_MAX_GAP_MS: '0', UPLOADS_PER_KEY_MAX: '1' });
    expect(off.uploadPace).toMatchObject({ minBytesPerS: 0, maxGapMs: 0 });
    expect(off.uploadsPerKeyMax).toBe(1);
    for (const [name, value] of [
      ['UPLOADS_PER_KEY_MAX', '0'],
      ['UPLOAD_RATE_WINDOW_MS', '10'],
      ['UPLOAD_MAX_GAP_MS', '-1'],
      ['UPLOAD_MIN_BYTES_PER_S', 'fast'],
    ]) {
      expect(() => loadConfig({ ...base, [name as string]: value }), name).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, [name as string]: value }), name).toThrow(new RegExp(name as string));
    }
  });
});
