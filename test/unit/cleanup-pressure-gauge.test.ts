import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createPressureGauge, pressuredResources } from '../../src/resources/pressure-gauge.ts';
import { classify, DEFAULT_THRESHOLDS, type SystemSnapshot } from '../../src/resources/system-monitor.ts';

const GiB = 1024 ** 3;
const memory = { rssBytes: 100 * 1024 ** 2, heapUsedBytes: 10, heapLimitBytes: 100, systemFreeBytes: 8 * GiB };
const snapshotWithFreeDisk = (freeBytes: number): SystemSnapshot =>
  classify({ freeBytes, totalBytes: 100 * GiB }, memory, DEFAULT_THRESHOLDS);

function setup(initialFree: number) {
  let free = initialFree;
  const lines: Array<{ msg: string; to?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  let calls = 0;
  let finish: (() => void) | null = null;
  const gauge = createPressureGauge({
    monitor: { sample: async () => snapshotWithFreeDisk(free) },
    logger,
    onCritical: () => {
      calls += 1;
      return new Promise<void>((r) => (finish = r));
    },
  });
  return {
    gauge,
    lines,
    setFree: (b: number) => (free = b),
    calls: () => calls,
    finishCleanup: () => finish?.(),
  };
}

describe('createPressureGauge', () => {
  it('reports normal before the first sample and the sampled level after', async () => {
    const t = setup(1 * GiB);
    expect(t.gauge.level()).toBe('normal');
    expect(t.gauge.last()).toBeNull();
    await t.gauge.refresh();
    expect(t.gauge.level()).toBe('elevated');
    expect(pressuredResources(t.gauge.last()!)).toEqual(['disk']);
  });

  it('starts one emergency cleanup per critical spell, not one per sample while it runs', async () => {
    const t = setup(100 * 1024 ** 2);
    await t.gauge.refresh();
    await t.gauge.refresh();
    expect(t.calls()).toBe(1);
    t.finishCleanup();
    await t.gauge.idle();
    await t.gauge.refresh();
    expect(t.calls()).toBe(2);
  });

  it('does not clean up under elevated pressure', async () => {
    const t = setup(1 * GiB);
    await t.gauge.refresh();
    expect(t.calls()).toBe(0);
  });

  it('logs each change of level once, and the recovery', async () => {
    const t = setup(10 * GiB);
    await t.gauge.refresh();
    t.setFree(1 * GiB);
    await t.gauge.refresh();
    await t.gauge.refresh();
    t.setFree(10 * GiB);
    await t.gauge.refresh();
    expect(t.lines.map((l) => `${l.msg}:${l.to}`)).toEqual(['pressure level changed:elevated', 'pressure over:normal']);
  });

  it('logs a failed emergency cleanup instead of throwing from refresh', async () => {
    const lines: Array<{ msg: string }> = [];
    const gauge = createPressureGauge({
      monitor: { sample: async () => snapshotWithFreeDisk(1) },
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
      onCritical: async () => {
        throw new Error('disk gone');
      },
    });
    await expect(gauge.refresh()).resolves.toMatchObject({ level: 'critical' });
    await gauge.idle();
    expect(lines.map((l) => l.msg)).toContain('emergency cleanup failed');
  });
});
