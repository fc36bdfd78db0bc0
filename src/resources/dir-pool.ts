import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import type { JobDirs } from './job-dirs.ts';

export interface DirPoolLimits {
  /** Job directories leased at once: uploads streaming plus jobs queued or processing. */
  maxLeases: number;
  /** Upload bytes the leases may hold at once (declared or received so far, then the stored size). */
  maxBytes: number;
  /** Sent as Retry-After when a bound refuses a new upload. */
  retryAfterS: number;
}

/** One job's claim on its directory under DATA_DIR/jobs, held from the first upload byte until the job ends. */
export interface DirLease {
  readonly jobId: string;
  /** Upload bytes counted against the pool's byte bound. */
  readonly bytes: number;
  /**
   * Raises the reservation to `totalBytes` when it is below (an upload without Content-Length grows as it
   * streams); throws SERVER_BUSY when that would pass the byte bound, and the reservation stays as it was.
   */
  grow(totalBytes: number): void;
  /** Sets the reservation to what the upload really takes on disk (the declared length counts multipart framing). */
  settle(bytes: number): void;
  /** Returns the lease to the pool; true the first time, false on every later call. */
  release(): boolean;
}

export interface DirPoolUsage {
  leases: number;
  bytes: number;
}

export interface DirPool {
  /**
   * Leases the job's directory for a new upload and creates it. Throws SERVER_BUSY with Retry-After, before
   * anything is created, when the lease or byte bound is reached: a live job's directory is never touched.
   */
  acquire(jobId: string, expectedBytes: number | null): Promise<DirLease>;
  /**
   * Crash recovery: a job accepted by an earlier process takes a lease again whatever the bounds, since refusing
   * it would lose accepted work. Returns the existing lease when the job holds one already.
   */
  adopt(jobId: string, bytes: number): DirLease;
  /** Releases the job's lease if it holds one; true when this call released it. */
  release(jobId: string): boolean;
  holds(jobId: string): boolean;
  usage(): DirPoolUsage;
}

function validateLimits(limits: DirPoolLimits): void {
  for (const key of ['maxLeases', 'maxBytes', 'retryAfterS'] as const) {
    const value = limits[key];
    if (!Number.isInteger(value) || value < 1) {
      throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${String(value)}\``);
    }
  }
}

/**
 * The bounds on concurrent work directories. The pool refuses rather than queues: a waiting upload would hold
 * its connection with the body unread, and the client learns nothing until a timeout, while 503 with
 * Retry-After tells it when to come back. Released directories are not reused: creating one is two mkdir calls,
 * which cost nothing next to a job (measured in docs/operations.md).
 */
export function createDirPool(deps: { dirs: Pick<JobDirs, 'create'>; limits: DirPoolLimits; logger: Logger }): DirPool {
  const { dirs, limits, logger } = deps;
  validateLimits(limits);
  const leases = new Map<string, DirLease>();
  let bytesInUse = 0;

  const busy = (resource: 'leases' | 'bytes', message: string): AppError =>
    new AppError('SERVER_BUSY', message, {
      retryAfterS: limits.retryAfterS,
      retryable: true,
      details: { resource: `job_dirs_${resource}`, leases: leases.size, bytes: bytesInUse },
    });

  const register = (jobId: string, initialBytes: number): DirLease => {
    let bytes = initialBytes;
    // Identity, not the id: a stale lease must not act on a later lease of the same job (adopted at restart).
    const current = (): boolean => leases.get(jobId) === lease;
    const lease: DirLease = {
      jobId,
      get bytes() {
        return bytes;
      },
      grow(totalBytes) {
        if (!current() || totalBytes <= bytes) return;
        if (bytesInUse - bytes + totalBytes > limits.maxBytes) {
          throw busy('bytes', 'The server is storing as many uploads as it takes at once; retry later.');
        }
        bytesInUse += totalBytes - bytes;
        bytes = totalBytes;
      },
      settle(settled) {
        if (!current()) return;
        bytesInUse += settled - bytes;
        bytes = settled;
      },
      release() {
        if (!current()) return false;
        leases.delete(jobId);
        bytesInUse -= bytes;
        return true;
      },
    };
    leases.set(jobId, lease);
    bytesInUse += bytes;
    return lease;
  };

  return {
    async acquire(jobId, expectedBytes) {
      if (leases.has(jobId)) throw new Error(`job ${jobId} holds a directory lease already`);
      if (leases.size >= limits.maxLeases) {
        logger.warn({ leases: leases.size, max: limits.maxLeases }, 'rejecting upload: job directory leases exhausted');
        throw busy('leases', 'The server is handling as many jobs as it takes at once; retry later.');
      }
      const reserve = expectedBytes ?? 0;
      if (bytesInUse + reserve > limits.maxBytes) {
        logger.warn(
          { bytes: bytesInUse, reserve, max: limits.maxBytes },
          'rejecting upload: job directory bytes exhausted',
        );
        throw busy('bytes', 'The server is storing as many uploads as it takes at once; retry later.');
      }
      const lease = register(jobId, reserve);
      try {
        await dirs.create(jobId);
      } catch (err) {
        lease.release();
        throw err;
      }
      return lease;
    },
    adopt: (jobId, bytes) => leases.get(jobId) ?? register(jobId, bytes),
    release: (jobId) => leases.get(jobId)?.release() ?? false,
    holds: (jobId) => leases.has(jobId),
    usage: () => ({ leases: leases.size, bytes: bytesInUse }),
  };
}
