import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import type { SystemMonitor, SystemSnapshot } from '../resources/system-monitor.ts';

export interface SystemValidatorOptions {
  monitor: Pick<SystemMonitor, 'sample' | 'thresholds'>;
  logger: Logger;
  /** Disk one second of audio takes as a chunk: 16 kHz mono s16le WAV. @default 32000 */
  chunkBytesPerSecond?: number;
  /** Safety factor on the estimate (container overhead, overlap, transcript, SQLite). @default 1.25 */
  margin?: number;
  /** @default 30 */
  memoryRetryAfterS?: number;
  /** Chunks are deleted as results arrive, so disk frees up as running jobs progress. @default 60 */
  diskRetryAfterS?: number;
}

export interface SystemCheckInput {
  sizeBytes: number;
  /** Null before the probe: only the upload itself is counted then. */
  durationS: number | null;
  /**
   * The upload is on disk already: free space then has to take only what is still to be written (the chunks),
   * while the job's whole footprint, upload included, must still fit on the volume.
   */
  uploadStored: boolean;
}

export interface SystemCheckResult {
  snapshot: SystemSnapshot;
  /** Free space the job still needs (margin included). */
  requiredBytes: number;
  ms: number;
}

export interface SystemValidator {
  /**
   * Throws 503 SERVER_BUSY (with retryAfterS) under memory pressure or when the disk cannot take the job now,
   * and 507 INSUFFICIENT_STORAGE when the job could not fit even on the empty volume (retrying cannot help).
   */
  check(input: SystemCheckInput): Promise<SystemCheckResult>;
}

/** Disk a job needs: the upload plus the chunks of its whole duration, times a margin. */
export function requiredDiskBytes(
  sizeBytes: number,
  durationS: number | null,
  chunkBytesPerSecond: number,
  margin: number,
): number {
  return Math.ceil(margin * (sizeBytes + chunkBytesPerSecond * (durationS ?? 0)));
}

export function createSystemValidator(options: SystemValidatorOptions): SystemValidator {
  const { monitor, logger } = options;
  const chunkBytesPerSecond = options.chunkBytesPerSecond ?? 32_000;
  const margin = options.margin ?? 1.25;
  const memoryRetryAfterS = options.memoryRetryAfterS ?? 30;
  const diskRetryAfterS = options.diskRetryAfterS ?? 60;
  if (!(margin >= 1)) throw new TypeError(`margin must be >= 1, got ${String(margin)}`);
  if (!(chunkBytesPerSecond > 0)) {
    throw new TypeError(`chunkBytesPerSecond must be > 0, got ${String(chunkBytesPerSecond)}`);
  }

  return {
    async check({ sizeBytes, durationS, uploadStored }) {
      const started = performance.now();
      const snapshot = await monitor.sample();
      const { memory, disk } = snapshot;
      if (memory.level !== 'normal') {
        logger.warn({ memory }, 'rejecting job: memory pressure');
        throw new AppError('SERVER_BUSY', 'The server is short of memory; retry later.', {
          retryAfterS: memoryRetryAfterS,
          retryable: true,
          details: { resource: 'memory', level: memory.level },
        });
      }
      const footprintBytes = requiredDiskBytes(sizeBytes, durationS, chunkBytesPerSecond, margin);
      // A stored upload is already out of the free space: counting it again would refuse jobs that fit.
      const requiredBytes = uploadStored
        ? requiredDiskBytes(0, durationS, chunkBytesPerSecond, margin)
        : footprintBytes;
      const reserve = monitor.thresholds.diskFreeCriticalBytes;
      if (footprintBytes + reserve > disk.totalBytes) {
        logger.warn({ disk, footprintBytes, reserve }, 'rejecting job: larger than the data volume');
        throw new AppError(
          'INSUFFICIENT_STORAGE',
          'The recording needs more working disk space than this server has; split it into shorter files.',
          { details: { resource: 'disk' } },
        );
      }
      if (disk.level === 'critical' || disk.freeBytes - requiredBytes < reserve) {
        logger.warn({ disk, requiredBytes, reserve }, 'rejecting job: not enough free disk now');
        throw new AppError('SERVER_BUSY', 'The server is short of disk space; retry later.', {
          retryAfterS: diskRetryAfterS,
          retryable: true,
          details: { resource: 'disk', level: disk.level },
        });
      }
      return { snapshot, requiredBytes, ms: performance.now() - started };
    },
  };
}
