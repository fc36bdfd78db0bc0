import { AppError } from '../../errors.ts';

export interface UploadSlots {
  /**
   * Takes one of `holder`'s slots for an upload in progress; throws RATE_LIMITED with Retry-After when it holds
   * them all. The returned function gives the slot back (a second call does nothing).
   */
  take(holder: string): () => void;
}

/**
 * Bounds the uploads one API key (or one address in open mode) has in progress at once, so one client cannot
 * take every job directory lease of the pool and lock the others out. Counted per process.
 */
export function createUploadSlots(options: { maxPerHolder: number; retryAfterS: number }): UploadSlots {
  const { maxPerHolder, retryAfterS } = options;
  const inUse = new Map<string, number>();
  return {
    take(holder) {
      const count = inUse.get(holder) ?? 0;
      if (count >= maxPerHolder) {
        throw new AppError('RATE_LIMITED', `At most ${maxPerHolder} uploads from one client at once; retry when one has finished.`, {
          retryAfterS,
          retryable: true,
          details: { reason: 'concurrent_uploads', limit: maxPerHolder },
        });
      }
      inUse.set(holder, count + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (inUse.get(holder) ?? 1) - 1;
        if (left === 0) inUse.delete(holder);
        else inUse.set(holder, left);
      };
    },
  };
}
