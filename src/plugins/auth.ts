import { timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { ApiKey } from '../api-keys.ts';
import { bearerToken, digest } from '../bearer.ts';
import { AppError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who owns the jobs this request may see: a fingerprint of its API key, or null in open mode. */
    owner: string | null;
    /** The name of the request's API key (API_KEYS_FILE), or null in open mode. */
    keyName: string | null;
  }
}

/**
 * Bearer keys on /v1. A job belongs to the key that created it; we store a fingerprint of the key and its name,
 * never the key. Keys are compared as digests with timingSafeEqual so neither length nor content leaks through
 * timing. Without keys every /v1 route is open, which is said loudly once at start.
 */
export default fp<{ apiKeys: readonly ApiKey[] }>(
  async (app, opts) => {
    const keys = opts.apiKeys.map((k) => ({ name: k.name, digest: digest(k.key) }));
    app.decorateRequest('owner', null);
    app.decorateRequest('keyName', null);
    if (keys.length === 0) {
      app.log.warn('API_KEYS is not set (nor API_KEYS_FILE): every /v1 route is OPEN to anyone who can reach this port');
      return;
    }
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith('/v1/')) return;
      const token = bearerToken(request.headers.authorization);
      const given = token === null ? null : digest(token);
      // Every key is compared, so the time taken does not tell which one matched.
      let found: { name: string } | null = null;
      for (const k of keys) if (given !== null && timingSafeEqual(k.digest, given)) found = k;
      if (!found || !given) {
        throw new AppError('UNAUTHORIZED', 'Send a valid API key as `Authorization: Bearer <key>`.');
      }
      request.owner = given.toString('hex').slice(0, 32);
      request.keyName = found.name;
    });
  },
  { name: 'auth' },
);
