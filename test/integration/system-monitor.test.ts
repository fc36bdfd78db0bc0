import { statfsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSystemMonitor } from '../../src/resources/system-monitor.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'system-monitor-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('system monitor on this machine', () => {
  it('reads the free and total disk of the volume holding dataDir', async () => {
    const snapshot = await createSystemMonitor({ dataDir: dir }).sample();
    const s = statfsSync(dir);
    expect(snapshot.disk.totalBytes).toBe(s.blocks * s.bsize);
    expect(snapshot.disk.freeBytes).toBeGreaterThan(0);
    expect(snapshot.disk.freeBytes).toBeLessThanOrEqual(snapshot.disk.totalBytes);
  });

  it('reads the volume of the nearest existing ancestor when dataDir does not exist yet', async () => {
    const snapshot = await createSystemMonitor({ dataDir: path.join(dir, 'not', 'yet', 'made') }).sample();
    expect(snapshot.disk.totalBytes).toBe(statfsSync(dir).blocks * statfsSync(dir).bsize);
  });

  it('reads this process memory', async () => {
    const snapshot = await createSystemMonitor({ dataDir: dir }).sample();
    expect(snapshot.memory.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(snapshot.memory.heapUsedBytes).toBeGreaterThan(0);
    expect(snapshot.memory.heapLimitBytes).toBeGreaterThan(snapshot.memory.heapUsedBytes);
    expect(snapshot.memory.systemFreeBytes).toBeGreaterThan(0);
  });

  it('reports critical disk when the thresholds exceed the volume size', async () => {
    const total = statfsSync(dir).blocks * statfsSync(dir).bsize;
    const snapshot = await createSystemMonitor({
      dataDir: dir,
      thresholds: { diskFreeElevatedBytes: total * 2, diskFreeCriticalBytes: total + 1 },
    }).sample();
    expect(snapshot.disk.level).toBe('critical');
    expect(snapshot.level).toBe('critical');
  });

  it('reports elevated memory when the rss threshold is below this process rss', async () => {
    const snapshot = await createSystemMonitor({
      dataDir: dir,
      thresholds: { rssElevatedBytes: 1, rssCriticalBytes: Number.MAX_SAFE_INTEGER },
    }).sample();
    expect(snapshot.memory.level).toBe('elevated');
    expect(snapshot.memory.pressuredBy).toContain('rss');
  });
});
