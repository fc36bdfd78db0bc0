import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCleanupManager } from '../../src/retention/cleanup-manager.ts';

const logger = pino({ level: 'silent' });

afterEach(() => {
  vi.useRealTimers();
});

describe('cleanup schedule', () => {
  it('keeps one chain of passes when start is called again, also while a pass runs', async () => {
    vi.useFakeTimers();
    let passes = 0;
    let release: (() => void) | null = null;
    const cleanup = createCleanupManager({
      store: {
        jobLifecycle: () => Promise.resolve(null),
        endedJobsBefore: () => Promise.resolve([]),
        deleteJob: () => Promise.resolve(),
      },
      dirs: {
        async list() {
          passes += 1;
          await new Promise<void>((r) => (release = r));
          return [];
        },
        inProcess: () => false,
        usage: async () => 0,
        remove: async () => undefined,
        removeChunks: async () => undefined,
      },
      logger,
      config: { retentionMs: 3_600_000, uploadRetentionMs: 0, intervalMs: 1000 },
      clock: () => new Date(),
    });
    cleanup.start();
    cleanup.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toBe(1);
    // Between a timer firing and the next one being set, no timer is pending: start must not begin a second chain.
    cleanup.start();
    release!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toBe(2);
    release!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(passes).toBe(3);
    release!();
    await vi.advanceTimersByTimeAsync(0);
    // No pass started without its interval, and only the one next timer is pending.
    expect(passes).toBe(3);
    expect(vi.getTimerCount()).toBe(1);
    await cleanup.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
