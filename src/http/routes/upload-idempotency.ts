import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { JobRecord } from '../../jobs/types.ts';
import type { Received } from './upload-receive.ts';

/*
 * An upload's Idempotency-Key: the header checked before any of the body is read, what the key stands for (the
 * request's fingerprint), and whether the job stored under it answers a repeat.
 */

/**
 * The request's Idempotency-Key (null without one), refused when empty, longer than 255 characters or holding a
 * control character (Node's parser refuses all but a tab; a key is something a client logs and compares).
 */
export function idempotencyKeyOf(request: FastifyRequest): string | null {
  const idempotencyKey =
    typeof request.headers['idempotency-key'] === 'string' ? request.headers['idempotency-key'] : null;
  if (
    idempotencyKey !== null &&
    (idempotencyKey.length === 0 || idempotencyKey.length > 255 || hasControlCharacter(idempotencyKey))
  ) {
    throw new AppError(
      'INVALID_FIELD',
      'Idempotency-Key must be 1 to 255 characters, none of them control characters.',
      {
        details: { field: 'Idempotency-Key' },
      },
    );
  }
  return idempotencyKey;
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * What an Idempotency-Key stands for: the fields, the file name and the file's content. Field order does not
 * matter; every value does. Asked only with a key: the file is hashed only then.
 */
export function requestFingerprint(received: Received, tag: string | undefined): string {
  const byName = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);
  const fields = Object.entries(received.fields).sort(byName);
  const lists = Object.entries(received.lists).sort(byName);
  // What POST /v1/jobs has always hashed, extended only where a route has more to say (fingerprints are stored).
  const extra = lists.length === 0 && tag === undefined ? [] : [lists, tag ?? null];
  const parts = [received.filename, received.sha256, fields, ...extra];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The job a repeated key answers, or 422 when the key was first used for another request (as payment APIs do). */
export function sameRequest(
  earlier: { job: JobRecord; requestFingerprint: string | null },
  fingerprint: string | null,
): JobRecord {
  // Jobs from before fingerprints were kept replay for any request, as they did.
  if (earlier.requestFingerprint !== null && earlier.requestFingerprint !== fingerprint) {
    throw new AppError(
      'IDEMPOTENCY_KEY_REUSED',
      'This Idempotency-Key was already used for a different request (other file or fields); use a new key for a new upload.',
    );
  }
  return earlier.job;
}
