import { timingSafeEqual } from 'node:crypto';
import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyPluginCallback,
  FastifyRequest,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import type { ApiKey } from '../../config.ts';
import { bearerToken, digest } from '../bearer.ts';
import { AppError } from '../../errors.ts';
import type { AuthFailures } from '../auth-failures.ts';
import { openModeBrowserRefusal } from '../open-mode-browsers.ts';
import { OPEN_MODE_CLIENT_MESSAGES, openModeClientRefusal } from '../open-mode-clients.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who owns the jobs this request may see: a fingerprint of its API key, or null without a valid one (always in open mode). */
    owner: string | null;
    /** The name of the request's API key (API_KEYS_FILE), or null without a valid one. */
    keyName: string | null;
    /**
     * Whether open mode serves this request's client: no API keys, and a client OPEN_MODE_CLIENTS admits. Set on
     * public routes too (/health shows such a client what it shows a key holder and more). Always false with keys.
     */
    openAccess: boolean;
  }
  interface FastifyContextConfig {
    [PUBLIC]?: true;
  }
}

/**
 * Set on a route's config by publicRoutes() only. A symbol that is not exported, so a route cannot declare
 * itself public in its own options and skip the check that public routes stay outside /v1.
 */
const PUBLIC: unique symbol = Symbol('chunkscribe.public-route');

/** Whether a route answers without an API key (it was registered through publicRoutes()). */
export function isPublicRoute(config: FastifyContextConfig | undefined): boolean {
  return config?.[PUBLIC] === true;
}

/** The API lives under /v1; a route there is never public. Case-insensitive so that /V1 cannot slip through either. */
const API_PREFIX = /^\/v1(\/|$)/i;

/**
 * Wraps a plugin so that every route it registers (HEAD twins included) answers without an API key: health,
 * the OpenAPI document and UI, /metrics (which has its own token) and the upload page. The wrapper runs its own
 * encapsulated context whose onRoute hook marks each route, and refuses any route under /v1 as the app starts.
 */
export function publicRoutes<Options extends object>(
  plugin: FastifyPluginAsync<Options> | FastifyPluginCallback<Options>,
): FastifyPluginAsync<Options> {
  return async (scope, opts) => {
    scope.addHook('onRoute', (route: RouteOptions) => {
      if (API_PREFIX.test(route.url)) {
        throw new Error(
          `${String(route.method)} ${route.url}: a /v1 route cannot be public; register it outside publicRoutes()`,
        );
      }
      route.config = { ...route.config, [PUBLIC]: true };
    });
    await scope.register(plugin, opts);
  };
}

/**
 * Bearer keys for every route that publicRoutes() did not register, whatever the route's path: the check reads
 * the matched route's config after routing, so no spelling of a URL (percent escapes, absolute-form request
 * lines) reaches a handler without a key, and a route added later is protected unless it is made public on
 * purpose. A request no route takes gets the app's 404 whatever it sends: the router answers it without looking
 * at any job. A job belongs to the key that created it; we store a fingerprint of the key and its name, never
 * the key. Keys are compared as digests with timingSafeEqual so neither length nor content leaks through
 * timing. Without keys every route is open, which is said loudly once at start.
 *
 * A key that matches nothing counts against the client's address (auth-failures.ts); once the address is over
 * the limit, every request from it that sends an Authorization header is refused before any credential is
 * compared, so the right guess answers as a wrong one would. A request without a credential guesses nothing and
 * is not counted: probes and clients missing their key keep their answers (401 on /v1), and cannot lock out a
 * key holder behind the same address.
 *
 * Open mode serves the clients OPEN_MODE_CLIENTS admits (by default those on this machine: open-mode-clients.ts);
 * any other gets 401 on every route a key would guard, before its body is read, and the public view of /health.
 *
 * Registered before the upload rate limiter, whose per-route hook counts by request.owner.
 */
export default fp<{ apiKeys: readonly ApiKey[]; openModeClients: 'loopback' | 'any'; failures: AuthFailures }>(
  async (app: FastifyInstance, opts) => {
    const { failures } = opts;
    const keys = opts.apiKeys.map((k) => ({ name: k.name, digest: digest(k.key) }));
    app.decorateRequest('owner', null);
    app.decorateRequest('keyName', null);
    app.decorateRequest('openAccess', false);
    // First, and in open mode too: the metrics token is checked whatever the API keys.
    app.addHook('onRequest', async (request) => {
      if (request.headers.authorization === undefined) return;
      const leftMs = failures.lockedFor(request.ip);
      if (leftMs === null) return;
      const retryAfterS = Math.ceil(leftMs / 1000);
      throw new AppError(
        'RATE_LIMITED',
        `Too many failed credentials from this address; retry in ${retryAfterS} seconds.`,
        { retryAfterS, retryable: true, details: { reason: 'auth_failures' } },
      );
    });
    if (keys.length === 0) {
      const everyone = opts.openModeClients === 'any';
      app.log.warn(
        { openModeClients: opts.openModeClients },
        everyone
          ? 'API_KEYS is not set (nor API_KEYS_FILE) and OPEN_MODE_CLIENTS=any: every /v1 route is OPEN to anyone ' +
              'who can reach this port'
          : 'API_KEYS is not set (nor API_KEYS_FILE): every /v1 route is OPEN to clients on this machine ' +
              '(loopback) only; others get 401 until API_KEYS is set (or OPEN_MODE_CLIENTS=any)',
      );
      app.addHook('onRequest', async (request) => {
        const refusal = everyone ? null : openModeClientRefusal(request);
        request.openAccess = refusal === null;
        if (request.is404 || isPublicRoute(request.routeOptions.config)) return;
        if (refusal !== null) {
          throw new AppError('UNAUTHORIZED', OPEN_MODE_CLIENT_MESSAGES[refusal], { details: { reason: refusal } });
        }
        // Open, but not to every site the machine's browser visits (open-mode-browsers.ts says why).
        const reason = openModeBrowserRefusal(request.headers);
        if (reason === null) return;
        throw new AppError(
          'UNAUTHORIZED',
          reason === 'cross_site'
            ? 'This server has no API keys: it takes browser requests from its own pages only.'
            : 'This server has no API keys: a browser reaches it under localhost or an IP address only. Open the ' +
                'page by IP address, or give the server API keys (API_KEYS) to use it under a host name.',
          { details: { reason } },
        );
      });
      return;
    }

    /** Sets owner and keyName when the request carries a valid key; true when it does. */
    function identify(request: FastifyRequest): boolean {
      const token = bearerToken(request.headers.authorization);
      if (token === null) return false;
      const given = digest(token);
      // Every key is compared, so the time taken does not tell which one matched.
      let found: { name: string } | null = null;
      for (const k of keys) if (timingSafeEqual(k.digest, given)) found = k;
      if (!found) return false;
      request.owner = given.toString('hex').slice(0, 32);
      request.keyName = found.name;
      return true;
    }

    app.addHook('onRequest', async (request) => {
      // Public routes still learn the caller's key when one is sent (/health shows more to a key holder).
      const open = request.is404 || isPublicRoute(request.routeOptions.config);
      if (!identify(request) && !open) {
        if (request.headers.authorization !== undefined) failures.failed(request.ip, 'v1');
        throw new AppError('UNAUTHORIZED', 'Send a valid API key as `Authorization: Bearer <key>`.');
      }
    });
  },
  { name: 'auth' },
);
