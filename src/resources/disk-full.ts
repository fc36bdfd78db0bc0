import { AppError } from '../errors.ts';

/** SQLite's primary result code for "database or disk is full" (extended codes keep it in the low byte). */
const SQLITE_FULL = 13;
/** SQLITE_CORRUPT and SQLITE_NOTADB: the file is not a database we can read. */
const SQLITE_MALFORMED = new Set([11, 26]);
/** What ffmpeg writes to stderr when its output cannot be written for lack of space (strerror of ENOSPC / EDQUOT). */
const NO_SPACE_TEXT = /No space left on device|Disk quota exceeded/i;

/** Seconds a client refused because the volume is full is told to wait (as the upload route's ENOSPC refusal). */
const DISK_FULL_RETRY_AFTER_S = 60;

/**
 * A write refused because the data volume is full. It is SERVER_BUSY to a client (the same request succeeds once
 * space is freed); inside the service it pauses the jobs instead of failing them (src/resources/storage-guard.ts).
 */
export class DiskFullError extends AppError {
  constructor(what: string, cause: unknown) {
    super('SERVER_BUSY', `The server's data volume is full (${what}); retry later.`, {
      retryAfterS: DISK_FULL_RETRY_AFTER_S,
      retryable: true,
      details: { resource: 'disk' },
      cause,
    });
    this.name = 'DiskFullError';
  }
}

function sqliteCode(err: unknown): number | null {
  const e = err as { code?: unknown; errcode?: unknown };
  return err instanceof Error && e.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number'
    ? e.errcode & 0xff
    : null;
}

/** Whether a write failed for lack of space: our DiskFullError, SQLITE_FULL, or ENOSPC / EDQUOT from node:fs. */
export function isDiskFull(err: unknown): boolean {
  if (err instanceof DiskFullError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || sqliteCode(err) === SQLITE_FULL;
}

/** ffmpeg reports a full volume only as text (its exit code is 1 for everything). */
export function saysNoSpace(text: string): boolean {
  return NO_SPACE_TEXT.test(text);
}

/** Whether SQLite found the file damaged or not a database at all. */
export function isMalformedStore(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== null && SQLITE_MALFORMED.has(code);
}
