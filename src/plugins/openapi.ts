import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { SHARED_SCHEMAS } from '../http-schemas.ts';
import { isPublicRoute, publicRoutes } from './auth.ts';

export interface OpenApiOptions {
  /** Whether routes need a bearer key (API keys configured). */
  bearer: boolean;
}

/**
 * The OpenAPI document, generated from the routes' own schemas (@fastify/swagger, dynamic mode), at /docs/json,
 * and Swagger UI at /docs, both public. Registered before the routes so that it sees every one of them.
 */
async function openApi(app: FastifyInstance, opts: OpenApiOptions): Promise<void> {
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'chunkscribe',
        // The contract's version (api.md, /v1), not the package's.
        version: '1.0.0',
        description:
          'Transcription of long recordings. Every error has the body `{ "error": { "code", "message", "details" } }`; ' +
          'the codes are listed in the ErrorBody schema and in the README.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A key of API_KEYS or API_KEYS_FILE.' } } },
    },
    // Shared schemas keep their $id as their name in components.schemas.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    // The document says what the auth plugin enforces: a key for every route not registered as public.
    transform: ({ schema, url, route }) => {
      if (!opts.bearer || isPublicRoute(route.config) || !schema) return { schema, url };
      return { schema: { ...schema, security: [{ bearer: [] }] }, url };
    },
  });
  // staticCSP: the UI's own pages get a CSP allowing exactly its assets; the upload page keeps its stricter one.
  await app.register(publicRoutes(swaggerUi), { routePrefix: '/docs', staticCSP: true });
}

export default fp(openApi, { name: 'chunkscribe-openapi', fastify: '5.x' });
