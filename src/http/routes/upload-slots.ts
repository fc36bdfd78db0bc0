import { AppError } from '../../errors.ts';

/** One upload in progress, counted against its holder's bounds until it is given back. */
export interface UploadSlot {
  /**
   * Raises the bytes this upload reserves to `totalBytes` when it is below (a body without Content-Length is
   * counted as it arrives); throws RATE_LIMITED with Retry-After when the holder's uploads would then reserve
   * more than the byte bound, and the reservation stays as it was.
   */
  grow(totalBytes: number): void;
  /** Gives the slot and its bytes back (a second call does nothing). */
  release(): void;
}

export interface UploadSlots {
  /**
   * Takes one of `holder`'s slots for an upload expected to reserve `expectedBytes` (null: unknown, counted as
   * it arrives); throws RATE_LIMITED with Retry-After when the holder has every slot, or when these bytes would
   * pass its byte bound.
   */
  take(holder: string, expectedBytes: number | null): UploadSlot;
}

interface Held {
  uploads: number;
  bytes: number;
}

/**
 * Bounds the uploads one API key (or one address in open mode) has in progress at once, in number and in the
 * bytes they reserve in the job directory pool, so one client cannot take every lease, nor every byte, of the
 * pool and lock the others out. Counted per process.
 */
export function createUploadSlots(options: {
  maxPerHolder: number;
  maxBytesPerHolder: number;
  retryAfterS: number;
}): UploadSlots {
  const { maxPerHolder, maxBytesPerHolder, retryAfterS } = options;
  const held = new Map<string, Held>();

  const tooManyBytes = (): AppError =>
    new AppError(
      'RATE_LIMITED',
      `Uploads from one client may reserve at most ${maxBytesPerHolder} bytes at once; retry when one has finished.`,
      {
        retryAfterS,
        retryable: true,
        details: { reason: 'concurrent_upload_bytes', limit_bytes: maxBytesPerHolder },
      },
    );

  return {
    take(holder, expectedBytes) {
      const mine = held.get(holder) ?? { uploads: 0, bytes: 0 };
      if (mine.uploads >= maxPerHolder) {
        throw new AppError(
          'RATE_LIMITED',
          `At most ${maxPerHolder} uploads from one client at once; retry when one has finished.`,
          {
            retryAfterS,
            retryable: true,
            details: { reason: 'concurrent_uploads', limit: maxPerHolder },
          },
        );
      }
      let bytes = expectedBytes ?? 0;
      if (mine.bytes + bytes > maxBytesPerHolder) throw tooManyBytes();
      mine.uploads += 1;
      mine.bytes += bytes;
      held.set(holder, mine);
      let given = false;
      return {
        grow(totalBytes) {
          if (given || totalBytes <= bytes) return;
          if (mine.bytes - bytes + totalBytes > maxBytesPerHolder) throw tooManyBytes();
          mine.bytes += totalBytes - bytes;
          bytes = totalBytes;
        },
        release() {
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
