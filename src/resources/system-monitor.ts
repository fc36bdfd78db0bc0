import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import type { SystemThresholds } from '../config.ts';
import type { ComponentStatus } from './component-check.ts';

export type PressureLevel = 'normal' | 'elevated' | 'critical';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const DEFAULT_THRESHOLDS: Readonly<SystemThresholds> = Object.freeze({
  diskFreeElevatedBytes: 2 * GiB,
  diskFreeCriticalBytes: 512 * MiB,
  rssElevatedBytes: 1.5 * GiB,
  rssCriticalBytes: 3 * GiB,
  heapElevatedRatio: 0.85,
  heapCriticalRatio: 0.95,
  systemFreeElevatedBytes: 512 * MiB,
  systemFreeCriticalBytes: 256 * MiB,
});

/** The raw numbers, behind an adapter so levels can be tested with made-up readings. */
export interface SystemReadings {
  disk(dir: string): Promise<{ freeBytes: number; totalBytes: number }>;
  memory(): { rssBytes: number; heapUsedBytes: number; heapLimitBytes: number; systemFreeBytes: number };
}

export interface SystemSnapshot {
  disk: { freeBytes: number; totalBytes: number; level: PressureLevel };
  memory: {
    rssBytes: number;
    heapUsedBytes: number;
    heapLimitBytes: number;
    systemFreeBytes: number;
    level: PressureLevel;
    /** Which readings crossed a threshold: 'rss', 'heap', 'system'. */
    pressuredBy: string[];
  };
  level: PressureLevel;
}

export interface SystemMonitor {
  readonly thresholds: Readonly<SystemThresholds>;
  sample(): Promise<SystemSnapshot>;
  /** The most recent sample, or null before the first. */
  last(): SystemSnapshot | null;
}

export interface SystemMonitorOptions {
  dataDir: string;
  thresholds?: Partial<SystemThresholds>;
  readings?: SystemReadings;
}

const RANK: Record<PressureLevel, number> = { normal: 0, elevated: 1, critical: 2 };

export function worstLevel(...levels: PressureLevel[]): PressureLevel {
  return levels.reduce<PressureLevel>((a, b) => (RANK[b] > RANK[a] ? b : a), 'normal');
}

/** For /health/ready: normal -> ok, elevated -> degraded, critical -> down. */
export function healthStatus(level: PressureLevel): ComponentStatus {
  return level === 'normal' ? 'ok' : level === 'elevated' ? 'degraded' : 'down';
}

function below(value: number, elevated: number, critical: number): PressureLevel {
  return value < critical ? 'critical' : value < elevated ? 'elevated' : 'normal';
}

function above(value: number, elevated: number, critical: number): PressureLevel {
  return value > critical ? 'critical' : value > elevated ? 'elevated' : 'normal';
}

/** Pure: readings plus thresholds to a snapshot. */
export function classify(
  disk: { freeBytes: number; totalBytes: number },
  memory: ReturnType<SystemReadings['memory']>,
  t: Readonly<SystemThresholds>,
): SystemSnapshot {
  const diskLevel = below(disk.freeBytes, t.diskFreeElevatedBytes, t.diskFreeCriticalBytes);
  const byReading: Array<[string, PressureLevel]> = [
    ['rss', above(memory.rssBytes, t.rssElevatedBytes, t.rssCriticalBytes)],
    ['heap', above(memory.heapUsedBytes / memory.heapLimitBytes, t.heapElevatedRatio, t.heapCriticalRatio)],
    ['system', below(memory.systemFreeBytes, t.systemFreeElevatedBytes, t.systemFreeCriticalBytes)],
  ];
  const memoryLevel = worstLevel(...byReading.map(([, level]) => level));
  return {
    disk: { ...disk, level: diskLevel },
    memory: {
      ...memory,
      level: memoryLevel,
      pressuredBy: byReading.filter(([, level]) => level !== 'normal').map(([name]) => name),
    },
    level: worstLevel(diskLevel, memoryLevel),
  };
}

export function validateThresholds(partial: Partial<SystemThresholds> = {}): SystemThresholds {
  const t = { ...DEFAULT_THRESHOLDS, ...partial };
  for (const [key, value] of Object.entries(t)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`threshold ${key} must be a finite number >= 0, got ${String(value)}`);
    }
  }
  const pairs: Array<[keyof SystemThresholds, keyof SystemThresholds, 'lower' | 'higher']> = [
    ['diskFreeElevatedBytes', 'diskFreeCriticalBytes', 'lower'],
    ['rssElevatedBytes', 'rssCriticalBytes', 'higher'],
    ['heapElevatedRatio', 'heapCriticalRatio', 'higher'],
    ['systemFreeElevatedBytes', 'systemFreeCriticalBytes', 'lower'],
  ];
  for (const [elevated, critical, critIs] of pairs) {
    const ok = critIs === 'lower' ? t[critical] <= t[elevated] : t[critical] >= t[elevated];
    if (!ok) {
      throw new TypeError(
        `threshold ${critical} (${t[critical]}) must be ${critIs} than or equal to ${elevated} (${t[elevated]})`,
      );
    }
  }
  return t;
}

/** statfs of dataDir, or of its nearest existing ancestor before dataDir is created. */
async function diskUnder(dir: string): Promise<{ freeBytes: number; totalBytes: number }> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(current);
      // bavail, not bfree: blocks reserved for root are not ours to fill.
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch (err) {
      const parent = path.dirname(current);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw err;
      current = parent;
    }
  }
}

export const nodeReadings: SystemReadings = {
  disk: diskUnder,
  memory() {
    const usage = process.memoryUsage();
    return {
      rssBytes: usage.rss,
      heapUsedBytes: usage.heapUsed,
      heapLimitBytes: v8.getHeapStatistics().heap_size_limit,
      // availableMemory() honours a cgroup limit (containers); os.freemem() would report the host's.
      systemFreeBytes: typeof process.availableMemory === 'function' ? process.availableMemory() : os.freemem(),
    };
  },
};

export function createSystemMonitor(options: SystemMonitorOptions): SystemMonitor {
  const thresholds = Object.freeze(validateThresholds(options.thresholds));
  const readings = options.readings ?? nodeReadings;
  let lastSnapshot: SystemSnapshot | null = null;
  return {
    thresholds,
    async sample() {
      const disk = await readings.disk(options.dataDir);
      lastSnapshot = classify(disk, readings.memory(), thresholds);
      return lastSnapshot;
    },
    last: () => lastSnapshot,
  };
}
