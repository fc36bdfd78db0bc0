import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { forwardTo } from '../forward-to.ts';
import { SHARED_SCHEMAS } from '../schemas.ts';
import { isPublicRoute, publicRoutes } from './auth.ts';

/** Every route not registered through publicRoutes() takes an API key. */
const NEEDS_A_KEY = [{ bearer: [] }];

const SWAGGER_OPTIONS: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'chunkscribe',
      // The contract's version (api.md, /v1), not the package's.
      version: '1.0.0',
      description:
        'Transcription of long recordings. Every error has the body `{ "error": { "code", "message", "details" } }`; ' +
        'the codes are listed in the ErrorBody schema and in the README.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    // The document is served by the service it describes: paths are relative to where it was fetched from.
    servers: [{ url: '/', description: 'This server.' }],
    tags: [
      { name: 'jobs', description: 'Upload a recording, follow its job, fetch the transcript.' },
      {
        name: 'openai',
        description:
          "OpenAI's audio API (transcriptions, translations, models) over the same jobs, in OpenAI's shapes.",
      },
      { name: 'health', description: 'Liveness, readiness and metrics for operators.' },
    ],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A key of API_KEYS or API_KEYS_FILE, as `Authorization: Bearer <key>`. A job belongs to the key that created it. ' +
            'A server with neither setting runs in open mode: it asks for no key and ignores this header, and serves ' +
            'only clients on its own machine (401 `open_mode_remote` to others) unless OPEN_MODE_CLIENTS=any.',
        },
        metricsToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'METRICS_TOKEN, as `Authorization: Bearer <token>`. /metrics asks for it when it is set and is open otherwise; ' +
            '/health and /health/ready show the operator view to it (every detail; an API key gets the tenant view).',
        },
      },
    },
  },
  // Shared schemas keep their $id as their name in components.schemas.
  refResolver: {
    buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
  },
  // The document says what the auth plugin enforces: a key for every route not registered as public, whatever a
  // route's own schema claims; a public route states its optional credentials itself (none when it states nothing).
  transform: ({ schema, url, route }) => {
    if (!schema) return { schema, url };
    const security = isPublicRoute(route.config) ? (schema.security ?? []) : NEEDS_A_KEY;
    return { schema: { ...schema, security }, url };
  },
};

/**
 * The routes' schemas put to the document: a Fastify instance of its own with @fastify/swagger and Swagger UI
 * (both loaded here),
 * and every route of the app registered again with its schema and config (a handler that is never called;
 * validators and serializers that are never compiled).
 */
async function documentApp(routes: readonly RouteOptions[]): Promise<FastifyInstance> {
  const unused = (): never => {
    throw new Error('the document app answers no route of the service');
  };
  const compilersFactory = { buildValidator: () => () => unused, buildSerializer: () => () => unused };
  const docs = Fastify({ schemaController: { compilersFactory } });
  for (const schema of SHARED_SCHEMAS) docs.addSchema(schema);
  const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
  ]);
  await docs.register(swagger, SWAGGER_OPTIONS);
  for (const { method, url, schema, config } of routes) {
    if (!url.startsWith(DOCS)) docs.route({ method, url, schema, config, exposeHeadRoute: false, handler: unused });
  }
  // staticCSP: the UI's own pages get a CSP allowing exactly its assets; the upload page keeps its stricter one.
  await docs.register(swaggerUi, { routePrefix: DOCS, staticCSP: true });
  await docs.ready();
  return docs;
}

const DOCS = '/docs';

/**
 * The OpenAPI document, generated from the routes' own schemas (@fastify/swagger, dynamic mode), at /docs/json,
 * and Swagger UI at /docs, both public. Registered before the routes so that it sees every one of them.
 *
 * Both are built on the first request under /docs (documentApp, forwardTo), from the routes collected as the
 * app registered them: building them at start, and the UI's static routes, kept ~1.8 MiB of an idle service's
 * RSS for pages few ask for.
 *
 * The document is the same whatever this server's configuration: it describes the contract (which routes take
 * a key), and the security schemes say what open mode and METRICS_TOKEN change.
 */
async function openApi(app: FastifyInstance): Promise<void> {
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  const forward = forwardTo(() => documentApp(routes));
  await app.register(
    publicRoutes(async (scope: FastifyInstance) => {
      for (const url of [DOCS, `${DOCS}/*`]) scope.get(url, { schema: { hide: true } }, forward);
    }),
  );
}

export default fp(openApi, { name: 'chunkscribe-openapi', fastify: '5.x' });
