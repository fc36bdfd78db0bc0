import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import {
  classify,
  createSystemMonitor,
  DEFAULT_THRESHOLDS,
  healthStatus,
  validateThresholds,
  type SystemReadings,
} from '../../src/resources/system-monitor.ts';
import { createSystemValidator, requiredDiskBytes } from '../../src/validate/system-validator.ts';

const logger = pino({ level: 'silent' });
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

interface Fake {
  freeBytes: number;
  totalBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapLimitBytes: number;
  systemFreeBytes: number;
}

const calm: Fake = {
  freeBytes: 100 * GiB,
  totalBytes: 200 * GiB,
  rssBytes: 200 * MiB,
  heapUsedBytes: 50 * MiB,
  heapLimitBytes: 4 * GiB,
  systemFreeBytes: 16 * GiB,
};

function readings(fake: Partial<Fake>): SystemReadings {
  const f = { ...calm, ...fake };
  return {
    disk: async () => ({ freeBytes: f.freeBytes, totalBytes: f.totalBytes }),
    memory: () => ({
      rssBytes: f.rssBytes,
      heapUsedBytes: f.heapUsedBytes,
      heapLimitBytes: f.heapLimitBytes,
      systemFreeBytes: f.systemFreeBytes,
    }),
  };
}

function validatorWith(fake: Partial<Fake>) {
  const monitor = createSystemMonitor({ dataDir: '/nowhere', readings: readings(fake) });
  return createSystemValidator({ monitor, logger, margin: 1 });
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

describe('system monitor', () => {
  it.each([
    [{}, 'normal', 'normal', []],
    [{ freeBytes: 1.9 * GiB }, 'elevated', 'normal', []],
    [{ freeBytes: 500 * MiB }, 'critical', 'normal', []],
    [{ rssBytes: 1.6 * GiB }, 'normal', 'elevated', ['rss']],
    [{ rssBytes: 3.1 * GiB }, 'normal', 'critical', ['rss']],
    [{ heapUsedBytes: 0.9 * 4 * GiB }, 'normal', 'elevated', ['heap']],
    [{ heapUsedBytes: 0.96 * 4 * GiB }, 'normal', 'critical', ['heap']],
    [{ systemFreeBytes: 400 * MiB }, 'normal', 'elevated', ['system']],
    [{ systemFreeBytes: 100 * MiB, rssBytes: 2 * GiB }, 'normal', 'critical', ['rss', 'system']],
  ] as const)('classifies %j as disk %s, memory %s', async (fake, disk, memory, by) => {
    const snapshot = await createSystemMonitor({ dataDir: '/x', readings: readings(fake) }).sample();
    expect(snapshot.disk.level).toBe(disk);
    expect(snapshot.memory.level).toBe(memory);
    expect(snapshot.memory.pressuredBy).toEqual(by);
    expect(snapshot.level).toBe(
      disk === 'critical' || memory === 'critical'
        ? 'critical'
        : disk === 'normal' && memory === 'normal'
          ? 'normal'
          : 'elevated',
    );
  });

  it('uses thresholds given as options', () => {
    const t = validateThresholds({ diskFreeElevatedBytes: 200 * GiB, diskFreeCriticalBytes: 50 * GiB });
    expect(classify({ freeBytes: 100 * GiB, totalBytes: 1000 * GiB }, readings({}).memory(), t).disk.level).toBe(
      'elevated',
    );
  });

  it('refuses thresholds whose critical level is laxer than the elevated one', () => {
    expect(() => validateThresholds({ rssElevatedBytes: 2 * GiB, rssCriticalBytes: 1 * GiB })).toThrow(
      /rssCriticalBytes/,
    );
    expect(() => validateThresholds({ diskFreeCriticalBytes: 3 * GiB })).toThrow(/diskFreeCriticalBytes/);
    expect(() => validateThresholds({ heapElevatedRatio: Number.NaN })).toThrow(/heapElevatedRatio/);
  });

  it('remembers the last sample', async () => {
    const monitor = createSystemMonitor({ dataDir: '/x', readings: readings({}) });
    expect(monitor.last()).toBeNull();
    const snapshot = await monitor.sample();
    expect(monitor.last()).toBe(snapshot);
    expect(monitor.thresholds).toEqual(DEFAULT_THRESHOLDS);
  });

  it('maps levels to health statuses', () => {
    expect([healthStatus('normal'), healthStatus('elevated'), healthStatus('critical')]).toEqual([
      'ok',
      'degraded',
      'down',
    ]);
  });
});

describe('system validator', () => {
  it('counts the upload plus 32 kB per second of chunks, times the margin', () => {
    expect(requiredDiskBytes(1_000_000, 100, 32_000, 1.5)).toBe(Math.ceil(1.5 * (1_000_000 + 3_200_000)));
    expect(requiredDiskBytes(1_000_000, null, 32_000, 1.25)).toBe(1_250_000);
  });

  it('passes when memory is normal and the disk holds the job with the reserve left', async () => {
    const result = await validatorWith({}).check({ sizeBytes: 10 * MiB, durationS: 3600, uploadStored: false });
    expect(result.requiredBytes).toBe(10 * MiB + 32_000 * 3600);
    expect(result.snapshot.level).toBe('normal');
  });

  it('passes on an elevated disk when the job still fits above the reserve', async () => {
    const result = await validatorWith({ freeBytes: 1 * GiB }).check({
      sizeBytes: 10 * MiB,
      durationS: 60,
      uploadStored: false,
    });
    expect(result.snapshot.disk.level).toBe('elevated');
  });

  it.each([
    [{ rssBytes: 1.6 * GiB }, 'elevated'],
    [{ systemFreeBytes: 100 * MiB }, 'critical'],
  ] as const)('answers 503 SERVER_BUSY with retryAfterS under memory pressure %j', async (fake, level) => {
    const err = await rejection(validatorWith(fake).check({ sizeBytes: 1, durationS: null, uploadStored: false }));
    expect(err.code).toBe('SERVER_BUSY');
    expect(err.statusCode).toBe(503);
    expect(err.retryAfterS).toBe(30);
    expect(err.details).toEqual({ resource: 'memory', level });
  });

  it('answers 503 SERVER_BUSY when the disk is critical', async () => {
    const err = await rejection(
      validatorWith({ freeBytes: 400 * MiB }).check({ sizeBytes: 1, durationS: null, uploadStored: false }),
    );
    expect(err.code).toBe('SERVER_BUSY');
    expect(err.retryAfterS).toBe(60);
    expect(err.details).toEqual({ resource: 'disk', level: 'critical' });
  });

  it('answers 503 SERVER_BUSY when the chunks would eat into the reserve', async () => {
    // 1 GiB free, reserve 512 MiB: 5 h of chunks (576 MB) does not fit, 1 h does.
    const v = validatorWith({ freeBytes: 1 * GiB });
    await expect(v.check({ sizeBytes: 1 * MiB, durationS: 3600, uploadStored: false })).resolves.toBeDefined();
    const err = await rejection(v.check({ sizeBytes: 1 * MiB, durationS: 5 * 3600, uploadStored: false }));
    expect(err.code).toBe('SERVER_BUSY');
    expect(err.details).toEqual({ resource: 'disk', level: 'elevated' });
  });

  it('counts a stored upload in the volume, not again in the free space: only the chunks still to be written must fit', async () => {
    // The review's case: a 3.53 MB upload, already on disk, of 30 s (0.96 MB of chunks), with 1.6 MB free above
    // the reserve. Counting the upload again asked for 4.49 MB more and refused the job.
    const reserve = DEFAULT_THRESHOLDS.diskFreeCriticalBytes;
    const v = validatorWith({ freeBytes: reserve + 1_600_000, totalBytes: 4 * GiB });
    const stored = await v.check({ sizeBytes: 3_530_000, durationS: 30, uploadStored: true });
    expect(stored.requiredBytes).toBe(960_000);
    // Before the upload is written, it has to fit too.
    expect((await rejection(v.check({ sizeBytes: 3_530_000, durationS: null, uploadStored: false }))).details).toEqual({
      resource: 'disk',
      level: 'elevated',
    });
    // Chunks that do not fit are still refused.
    const err = await rejection(v.check({ sizeBytes: 3_530_000, durationS: 60, uploadStored: true }));
    expect(err.code).toBe('SERVER_BUSY');
    // The whole job, upload included, must still fit on the volume.
    const huge = await rejection(
      validatorWith({ totalBytes: 4 * GiB, freeBytes: 3 * GiB }).check({
        sizeBytes: 3.8 * GiB,
        durationS: 60,
        uploadStored: true,
      }),
    );
    expect(huge.code).toBe('INSUFFICIENT_STORAGE');
  });

  it('answers 507 INSUFFICIENT_STORAGE when the job exceeds the whole volume', async () => {
    const err = await rejection(
      validatorWith({ totalBytes: 4 * GiB, freeBytes: 3 * GiB }).check({
        sizeBytes: 3.8 * GiB,
        durationS: 60,
        uploadStored: false,
      }),
    );
    expect(err.code).toBe('INSUFFICIENT_STORAGE');
    expect(err.statusCode).toBe(507);
    expect(err.retryAfterS).toBeUndefined();
  });

  it('refuses a margin below 1', () => {
    const monitor = createSystemMonitor({ dataDir: '/x', readings: readings({}) });
    expect(() => createSystemValidator({ monitor, logger, margin: 0.5 })).toThrow(/margin/);
  });
});
