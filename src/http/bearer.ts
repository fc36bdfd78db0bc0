import { createHash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of a secret: digests have one length whatever was sent, so timingSafeEqual can compare them. */
export function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The token of an `Authorization: Bearer <token>` header, or null when there is none. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? null;
}

/** Whether an Authorization header carries the bearer token whose digest is `expected`, compared in constant time. */
export function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const given = bearerToken(header);
  return given !== null && timingSafeEqual(digest(given), expected);
}
