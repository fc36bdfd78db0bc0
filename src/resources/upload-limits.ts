import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

/**
 * The per-key bounds on uploads the HTTP layer enforces, as ports: this process's implementation is here; the one
 * shared by every host through Redis (scale-out) is in src/scale/shared-upload-limits.ts.
 */

/** One upload in progress, counted against its holder's bounds until it is given back. */
export interface UploadSlot {
  /**
   * Raises the bytes this upload reserves to `totalBytes` when it is below (a body without Content-Length is
   * counted as it arrives); rejects with RATE_LIMITED and Retry-After when the holder's uploads would then reserve
   * more than the byte bound, and the reservation stays as it was.
   */
  grow(totalBytes: number): Promise<void>;
  /** Gives the slot and its bytes back (a second call does nothing); never rejects. */
  release(): Promise<void>;
}

export interface UploadSlots {
  /**
   * Takes one of `holder`'s slots for an upload expected to reserve `expectedBytes` (null: unknown, counted as
   * it arrives); rejects with RATE_LIMITED and Retry-After when the holder has every slot, or when these bytes
   * would pass its byte bound.
   */
  take(holder: string, expectedBytes: number | null): Promise<UploadSlot>;
}

/** Counts a key's uploads in a fixed window shared by every host (what @fastify/rate-limit's store asks). */
export interface UploadRateCounter {
  /** Counts one upload of `key`; `current` is the count in the window so far, `ttlMs` what is left of it. */
  incr(key: string, windowMs: number): Promise<{ current: number; ttlMs: number }>;
}

/** What the upload routes are bounded by: the slots, and the rate counter when it is shared (null: per process). */
export interface UploadLimits {
  slots: UploadSlots;
  rateCounter: UploadRateCounter | null;
}

export interface UploadSlotBounds {
  maxPerHolder: number;
  maxBytesPerHolder: number;
  retryAfterS: number;
}

/** The bounds from the settings (UPLOADS_PER_KEY_MAX, UPLOAD_BYTES_PER_KEY_MAX; Retry-After as under pressure). */
export function uploadSlotBounds(
  config: Pick<Config, 'uploadsPerKeyMax' | 'uploadBytesPerKeyMax' | 'pressure'>,
): UploadSlotBounds {
  return {
    maxPerHolder: config.uploadsPerKeyMax,
    maxBytesPerHolder: config.uploadBytesPerKeyMax,
    retryAfterS: config.pressure.retryAfterS,
  };
}

/** This process's bounds: its own slots, and the rate counted by the rate-limit plugin's in-process store. */
export function localUploadLimits(bounds: UploadSlotBounds): UploadLimits {
  return { slots: createUploadSlots(bounds), rateCounter: null };
}

export function tooManyUploads(bounds: UploadSlotBounds): AppError {
  return new AppError(
    'RATE_LIMITED',
    `At most ${bounds.maxPerHolder} uploads from one client at once; retry when one has finished.`,
    {
      retryAfterS: bounds.retryAfterS,
      retryable: true,
      details: { reason: 'concurrent_uploads', limit: bounds.maxPerHolder },
    },
  );
}

export function tooManyUploadBytes(bounds: UploadSlotBounds): AppError {
  return new AppError(
    'RATE_LIMITED',
    `Uploads from one client may reserve at most ${bounds.maxBytesPerHolder} bytes at once; retry when one has finished.`,
    {
      retryAfterS: bounds.retryAfterS,
      retryable: true,
      details: { reason: 'concurrent_upload_bytes', limit_bytes: bounds.maxBytesPerHolder },
    },
  );
}

interface Held {
  uploads: number;
  bytes: number;
}

/**
 * Bounds the uploads one API key (or one address in open mode) has in progress at once, in number and in the
 * bytes they reserve in the job directory pool, so one client cannot take every lease, nor every byte, of the
 * pool and lock the others out. Counted in this process (the single-process mode).
 */
export function createUploadSlots(bounds: UploadSlotBounds): UploadSlots {
  const { maxPerHolder, maxBytesPerHolder } = bounds;
  const held = new Map<string, Held>();

  return {
    async take(holder, expectedBytes) {
      const mine = held.get(holder) ?? { uploads: 0, bytes: 0 };
      if (mine.uploads >= maxPerHolder) throw tooManyUploads(bounds);
      let bytes = expectedBytes ?? 0;
      if (mine.bytes + bytes > maxBytesPerHolder) throw tooManyUploadBytes(bounds);
      mine.uploads += 1;
      mine.bytes += bytes;
      held.set(holder, mine);
      let given = false;
      return {
        async grow(totalBytes) {
          if (given || totalBytes <= bytes) return;
          if (mine.bytes - bytes + totalBytes > maxBytesPerHolder) throw tooManyUploadBytes(bounds);
          mine.bytes += totalBytes - bytes;
          bytes = totalBytes;
        },
        async release() {
          if (given) return;
          given = true;
          mine.uploads -= 1;
          mine.bytes -= bytes;
          if (mine.uploads === 0) held.delete(holder);
        },
      };
    },
  };
}
