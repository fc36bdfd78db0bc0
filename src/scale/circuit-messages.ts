import { ERROR_STATUS, type ErrorCode } from '../errors.ts';
import type { CircuitOpening } from '../transcribe/circuit-share.ts';

/** An id names Redis keys: only what randomUUID (or legacyPeriodId) makes, bounded. */
const PERIOD_ID = /^[\w-]{1,64}$/;
/** A message this version says is well under 2 KiB (a reason is cut at 500 characters); a longer one is not one. */
const MAX_MESSAGE_CHARS = 8 * 1024;

/** What goes over the channel: one backend's open or close, said by one process (which ignores its own). */
export interface Message {
  backend: string;
  from: string;
  open?: CircuitOpening;
  closedAt?: number;
}

/** A message as heard: its open still to be checked (asOpening), a close at a time that is one. */
export interface HeardMessage {
  backend: string;
  from: string;
  open: unknown;
  closedAt: number | undefined;
}

/** An open as read back from Redis; `legacy` when a host of the previous version said it (no id). */
export interface SaidOpen {
  opening: CircuitOpening;
  legacy: boolean;
}

function isCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

/**
 * The period of an open said by a host of the previous version, which has no id: named by its times, which every
 * host reads alike from its message or its key (two such opens in the same millisecond with the same cool-down are
 * one period to this version: the same claim, the same close).
 */
function legacyPeriodId(openedAt: number, retryAt: number): string {
  return `legacy-${openedAt}-${retryAt}`;
}

/** An open as a message or the key says it, checked and bounded (null: not an open this version can use). */
export function asOpening(value: unknown): SaidOpen | null {
  if (typeof value !== 'object' || value === null) return null;
  const o = value as Record<string, unknown>;
  const { code, reason, openedAt, retryAt } = o;
  if (!isCode(code) || typeof reason !== 'string') return null;
  if (!Number.isSafeInteger(openedAt) || !Number.isSafeInteger(retryAt)) return null;
  const times = { openedAt: openedAt as number, retryAt: retryAt as number };
  const legacy = o.id === undefined;
  const id = legacy ? legacyPeriodId(times.openedAt, times.retryAt) : o.id;
  if (typeof id !== 'string' || !PERIOD_ID.test(id)) return null;
  return { opening: { id, code, reason: reason.slice(0, 500), ...times }, legacy };
}

/**
 * A message heard on the channel, checked: what any client of the Redis can publish there (a peer of another
 * version, a bug) must neither stop the subscriber (`null.backend` thrown in its listener ends the process) nor
 * close a circuit at a time that is not one (JSON reads 1e400 as Infinity). Null: not a message to mirror.
 */
export function asMessage(text: string): HeardMessage | null {
  if (text.length > MAX_MESSAGE_CHARS) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { backend, from, open, closedAt } = value as Record<string, unknown>;
  if (typeof backend !== 'string' || typeof from !== 'string') return null;
  if (closedAt !== undefined && !Number.isSafeInteger(closedAt)) return null;
  return { backend, from, open, closedAt: closedAt as number | undefined };
}
