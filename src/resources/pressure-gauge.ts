import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import type { PressureLevel, SystemMonitor, SystemSnapshot } from './system-monitor.ts';

export interface PressureGaugeDeps {
  monitor: Pick<SystemMonitor, 'sample'>;
  logger: Logger;
  /** Runs while the level is critical (an emergency cleanup); its failures are logged, never thrown. */
  onCritical: () => Promise<unknown>;
  /**
   * True while writes fail for lack of space (src/resources/storage-guard.ts): the disk is then critical whatever
   * the free-space reading says (a quota, or space taken between the sample and the write).
   */
  storageFull?: () => boolean;
}

export interface PressureGauge {
  /** Samples memory and disk now; a critical sample starts `onCritical` unless a run of it is still going. */
  refresh(): Promise<SystemSnapshot>;
  /** The level of the last refresh ('normal' before the first). */
  level(): PressureLevel;
  /** The last refreshed sample, or null before the first. */
  last(): SystemSnapshot | null;
  /** Resolves when the `onCritical` run in progress (if any) has settled. */
  idle(): Promise<void>;
}

/** Which resource a snapshot is pressured by, for the 503's details and the log. */
export function pressuredResources(snapshot: SystemSnapshot): string[] {
  const out: string[] = [];
  if (snapshot.disk.level !== 'normal') out.push('disk');
  if (snapshot.memory.level !== 'normal') out.push('memory');
  return out;
}

/**
 * The service's pressure level, refreshed by its caller's timer (the HTTP layer samples it for under-pressure):
 * logs every change of level and reacts to critical pressure with the emergency cleanup.
 */
export function createPressureGauge(deps: PressureGaugeDeps): PressureGauge {
  const { monitor, logger } = deps;
  let last: SystemSnapshot | null = null;
  let critical: Promise<void> | null = null;

  function onLevel(previous: PressureLevel, snapshot: SystemSnapshot): void {
    if (snapshot.level === previous) return;
    const fields = {
      from: previous,
      to: snapshot.level,
      resources: pressuredResources(snapshot),
      diskFreeBytes: snapshot.disk.freeBytes,
      rssBytes: snapshot.memory.rssBytes,
    };
    if (snapshot.level === 'normal') logger.info(fields, 'pressure over');
    else logger.warn(fields, 'pressure level changed');
  }

  return {
    async refresh() {
      const sample = await monitor.sample();
      const snapshot: SystemSnapshot = deps.storageFull?.()
        ? { ...sample, disk: { ...sample.disk, level: 'critical' }, level: 'critical' }
        : sample;
      const previous = last?.level ?? 'normal';
      last = snapshot;
      onLevel(previous, snapshot);
      if (snapshot.level === 'critical' && !critical) {
        critical = deps
          .onCritical()
          .then(
            () => undefined,
            (err: unknown) => logger.error({ err: errorMessage(err) }, 'emergency cleanup failed'),
          )
          .finally(() => {
            critical = null;
          });
      }
      return snapshot;
    },
    level: () => last?.level ?? 'normal',
    last: () => last,
    idle: async () => {
      await critical;
    },
  };
}
