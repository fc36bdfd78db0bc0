import rateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../../errors.ts';
import { clientOf } from '../client-address.ts';
import type { UploadRateCounter } from '../../resources/upload-limits.ts';

export interface UploadRateLimitOptions {
  /** Uploads a key may start per minute; 0 turns the limit off. */
  perMinute: number;
  /** Counts shared by every host (scale-out); null: the plugin's own in-process store. */
  counter: UploadRateCounter | null;
}

/**
 * Whose uploads are counted together: the API key's fingerprint, or in open mode the client (an IPv6 client's
 * /64: rotating addresses inside it buys no more uploads, clientOf).
 */
export function uploaderKey(request: FastifyRequest): string {
  return request.owner === null ? `ip:${clientOf(request.ip)}` : `key:${request.owner}`;
}

/** Route config that opts a route into the limit (POST /v1/jobs). */
export const RATE_LIMITED_ROUTE = { rateLimit: {} } as const;

/**
 * The plugin's store over a shared counter: one count per route and key, as its in-process store keeps. A counter
 * that fails rejects with its own error (a 503 SERVER_BUSY), which the plugin passes on: the upload is refused.
 */
function sharedStore(counter: UploadRateCounter): FastifyRateLimitStoreCtor {
  return class SharedCountStore implements FastifyRateLimitStore {
    readonly prefix: string;

    constructor(_options: unknown, prefix = '') {
      this.prefix = prefix;
    }

    incr(
      key: string,
      callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
      windowMs: number,
    ) {
      counter.incr(`${this.prefix}${key}`, windowMs).then(
        ({ current, ttlMs }) => callback(null, { current, ttl: ttlMs }),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    }

    child(route: { method: string | string[]; url: string }): FastifyRateLimitStore {
      return new SharedCountStore(null, `${String(route.method)}${route.url}:`);
    }
  };
}

/**
 * @fastify/rate-limit on the routes that opt in, counted per API key (its fingerprint, set by the auth plugin,
 * which runs first) or per client address in open mode. Over the limit: 429 RATE_LIMITED with Retry-After in the
 * contract's error shape, before any of the body is read.
 */
async function uploadRateLimit(app: FastifyInstance, opts: UploadRateLimitOptions): Promise<void> {
  if (opts.perMinute === 0) return;
  await app.register(rateLimit, {
    global: false,
    max: opts.perMinute,
    timeWindow: 60_000,
    keyGenerator: uploaderKey,
    ...(opts.counter ? { store: sharedStore(opts.counter) } : {}),
    // The limit and what is left are for the refusal; every accepted upload does not need three more headers.
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    errorResponseBuilder: (request, context) => {
      request.log.info({ keyName: request.keyName, max: context.max }, 'upload rate limited');
      return new AppError('RATE_LIMITED', `At most ${context.max} uploads a minute; retry in ${context.after}.`, {
        retryAfterS: Math.max(1, Math.ceil(context.ttl / 1000)),
        retryable: true,
        details: { limit_per_minute: context.max },
      });
    },
  });
}

export default fp(uploadRateLimit, { name: 'chunkscribe-upload-rate-limit', fastify: '5.x', dependencies: ['auth'] });
