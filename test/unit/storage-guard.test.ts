import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DiskFullError } from '../../src/resources/disk-full.ts';
import { createPressureGauge } from '../../src/resources/pressure-gauge.ts';
import { createStorageGuard, StorageWaitExceeded } from '../../src/resources/storage-guard.ts';
import { classify, DEFAULT_THRESHOLDS } from '../../src/resources/system-monitor.ts';
import { manualClock } from '../support/manual-clock.ts';

const full = () => new DiskFullError('test', new Error('database or disk is full'));
/** Lets the guard's async check (hasRoom, then waking the waiters) run to its end. */
const settle = () => new Promise((r) => setImmediate(r));

function setup(maxWaitMs = 10_000) {
  const clock = manualClock(1_000);
  let room = false;
  let fullEvents = 0;
  const guard = createStorageGuard({
    logger: pino({ level: 'silent' }),
    hasRoom: async () => room,
    retryMs: 1_000,
    maxWaitMs,
    onFull: () => void (fullEvents += 1),
    clock,
  });
  return { guard, clock, setRoom: (r: boolean) => (room = r), fullEvents: () => fullEvents };
}

describe('createStorageGuard', () => {
  it('parks a write that failed for lack of space and runs it again once there is room, with one timer', async () => {
    const { guard, clock, setRoom, fullEvents } = setup();
    let tries = 0;
    const write = () => {
      tries += 1;
      if (tries === 1) throw full();
      return 'stored';
    };
    const gate = guard.writable(new AbortController().signal);
    const stored = guard.run('result', write, new AbortController().signal);
    const second = guard
      .run(
        'other',
        () => {
          throw full();
        },
        new AbortController().signal,
      )
      .catch((err: unknown) => err);
    await settle();
    expect(guard.isFull()).toBe(true);
    expect(fullEvents()).toBe(1);
    expect(guard.waiting()).toEqual({ reason: 'disk_full', until: new Date(2_000).toISOString() });
    expect(clock.pending()).toBe(1);

    clock.advance(1_000);
    await settle();
    expect(tries).toBe(1);
    expect(clock.pending()).toBe(1);

    setRoom(true);
    clock.advance(1_000);
    await settle();
    expect(await stored).toBe('stored');
    expect(tries).toBe(2);
    await gate;
    // The other write still fails: the volume is full again and the timer is re-armed, once.
    expect(guard.isFull()).toBe(true);
    expect(clock.pending()).toBe(1);
    guard.stop();
    expect(clock.pending()).toBe(0);
    void second;
  });

  it('fails a write that waited longer than maxWaitMs, and an abort ends a wait at once', async () => {
    const { guard, clock } = setup(2_500);
    const failing = () => {
      throw full();
    };
    const timedOut = guard.run('result', failing, new AbortController().signal).catch((err: unknown) => err);
    const controller = new AbortController();
    const aborted = guard.run('result', failing, controller.signal).catch((err: unknown) => err);
    await settle();
    controller.abort(new Error('cancelled'));
    expect(((await aborted) as Error).message).toBe('cancelled');
    for (let i = 0; i < 3; i++) {
      clock.advance(1_000);
      await settle();
    }
    expect(await timedOut).toBeInstanceOf(StorageWaitExceeded);
    expect((await timedOut) as StorageWaitExceeded).toMatchObject({ code: 'INSUFFICIENT_STORAGE' });
    guard.stop();
  });

  it('rethrows errors other than a full volume, and attempt() skips a write on a full one', async () => {
    const { guard } = setup();
    await expect(
      guard.run(
        'x',
        () => {
          throw new Error('boom');
        },
        new AbortController().signal,
      ),
    ).rejects.toThrow('boom');
    expect(guard.isFull()).toBe(false);
    expect(
      await guard.attempt('progress', () => {
        throw full();
      }),
    ).toBe(false);
    expect(guard.isFull()).toBe(true);
    expect(await guard.attempt('progress', () => Promise.resolve())).toBe(true);
    expect(guard.isFull()).toBe(false);
    expect(guard.waiting()).toBeNull();
    guard.stop();
  });
});

describe('the pressure gauge while the volume is full', () => {
  it('is critical and starts the emergency cleanup whatever the free-space reading says', async () => {
    let storageFull = false;
    let cleanups = 0;
    const gauge = createPressureGauge({
      monitor: {
        sample: async () =>
          classify(
            { freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 },
            { rssBytes: 1, heapUsedBytes: 1, heapLimitBytes: 100, systemFreeBytes: 8 * 1024 ** 3 },
            DEFAULT_THRESHOLDS,
          ),
      },
      logger: pino({ level: 'silent' }),
      onCritical: async () => void (cleanups += 1),
      storageFull: () => storageFull,
    });
    expect((await gauge.refresh()).level).toBe('normal');
    storageFull = true;
    const snapshot = await gauge.refresh();
    expect(snapshot.level).toBe('critical');
    expect(snapshot.disk.level).toBe('critical');
    await gauge.idle();
    expect(cleanups).toBe(1);
  });
});
