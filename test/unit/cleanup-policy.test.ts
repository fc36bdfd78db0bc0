import { describe, expect, it } from 'vitest';
import { dirAction, purgeCutoff, validatePolicy, type DirFacts } from '../../src/retention/cleanup-policy.ts';

const HOUR = 3_600_000;
const NOW = Date.parse('2030-01-10T12:00:00.000Z');
const policy = { retentionMs: 168 * HOUR, uploadRetentionMs: 24 * HOUR };
const endedAgo = (ms: number): string => new Date(NOW - ms).toISOString();
const ended = (ms: number, status: 'completed' | 'failed' | 'cancelled' = 'completed'): DirFacts => ({
  job: { status, endedAt: endedAgo(ms) },
  inProcess: false,
});

describe('dirAction', () => {
  it('keeps the files of queued and processing jobs, even in an emergency', () => {
    for (const status of ['queued', 'processing'] as const) {
      for (const emergency of [false, true]) {
        expect(dirAction({ job: { status, endedAt: null }, inProcess: false }, NOW, policy, emergency)).toBe('keep');
      }
    }
  });

  it('keeps a directory without a row while this process is still receiving its upload', () => {
    expect(dirAction({ job: null, inProcess: true }, NOW, policy, false)).toBe('keep');
    expect(dirAction({ job: null, inProcess: true }, NOW, policy, true)).toBe('keep');
  });

  it('removes a directory without a row that no upload in this process owns (orphan)', () => {
    expect(dirAction({ job: null, inProcess: false }, NOW, policy, false)).toBe('remove-dir');
  });

  it('keeps an ended job upload until its retention is over, dropping only chunk files', () => {
    expect(dirAction(ended(24 * HOUR - 1), NOW, policy, false)).toBe('remove-chunks');
    expect(dirAction(ended(24 * HOUR), NOW, policy, false)).toBe('remove-dir');
    expect(dirAction(ended(30 * HOUR, 'failed'), NOW, policy, false)).toBe('remove-dir');
  });

  it('removes a retained upload at once in an emergency', () => {
    expect(dirAction(ended(1), NOW, policy, true)).toBe('remove-dir');
  });

  it('removes an ended job files at once when uploads are not retained', () => {
    expect(dirAction(ended(0), NOW, { ...policy, uploadRetentionMs: 0 }, false)).toBe('remove-dir');
  });

  it('removes the files of an ended job without an end time rather than keeping them forever', () => {
    expect(dirAction({ job: { status: 'cancelled', endedAt: null }, inProcess: false }, NOW, policy, false)).toBe(
      'remove-dir',
    );
  });
});

describe('purgeCutoff', () => {
  it('is the retention period before now', () => {
    expect(purgeCutoff(NOW, policy)).toBe(endedAgo(168 * HOUR));
  });
});

describe('validatePolicy', () => {
  it('accepts zero upload retention', () => {
    expect(() => validatePolicy({ ...policy, uploadRetentionMs: 0, intervalMs: 1000 })).not.toThrow();
  });

  it('names the bad value when a setting is negative, zero where it must not be, or not a number', () => {
    expect(() => validatePolicy({ ...policy, uploadRetentionMs: -1, intervalMs: 1000 })).toThrow(
      /`uploadRetentionMs`.*`-1`/,
    );
    expect(() => validatePolicy({ ...policy, retentionMs: 0, intervalMs: 1000 })).toThrow(/`retentionMs`/);
    expect(() => validatePolicy({ ...policy, intervalMs: Number.NaN })).toThrow(/`intervalMs`.*`NaN`/);
  });
});
