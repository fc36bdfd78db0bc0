import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { AppError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who owns the jobs this request may see: a fingerprint of its API key, or null in open mode. */
    owner: string | null;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Bearer keys on /v1. A job belongs to the key that created it; we store a fingerprint of the key, never the key.
 * Keys are compared as digests with timingSafeEqual so neither length nor content leaks through timing.
 */
export default fp<{ apiKeys: string[] }>(
  async (app, opts) => {
    const keys = opts.apiKeys.map(digest);
    app.decorateRequest('owner', null);
    app.addHook('onRequest', async (request) => {
      if (keys.length === 0 || !request.url.startsWith('/v1/')) return;
      const header = request.headers.authorization ?? '';
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      const given = match?.[1] ? digest(match[1]) : null;
      const ok = given !== null && keys.some((k) => timingSafeEqual(k, given));
      if (!ok || !given) {
        throw new AppError('UNAUTHORIZED', 'Send a valid API key as `Authorization: Bearer <key>`.');
      }
      request.owner = given.toString('hex').slice(0, 32);
    });
  },
  { name: 'auth' },
);
