import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
export type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>;

/**
 * Fastify's own response serializer factory (fast-json-stringify), loaded from where fastify loads it: it is
 * fastify's dependency, not the service's, and this must stay the one fastify would use by default.
 */
export function fastifyDefaultSerializers(): SerializerFactory {
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  return (fromFastify('@fastify/fast-json-stringify-compiler') as () => SerializerFactory)();
}

/**
 * Response serializers compiled on a route's first answer with that status rather than when the route is
 * registered. Fastify compiles one fast-json-stringify function per route and status code at start, ~6 MiB of
 * generated code and schema copies for this API, most of it for answers a given deployment never sends (docs,
 * metrics, every error status of every route). What is compiled, and how it serializes, is unchanged; a schema
 * fast-json-stringify cannot compile now fails that route's first answer instead of the start (the route tests
 * and test/app/openapi.test.ts answer from every route).
 */
export function lazySerializers(build: SerializerFactory = fastifyDefaultSerializers()): SerializerFactory {
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options);
    return (route) => {
      let serialize: ((doc: unknown) => string) | undefined;
      return (doc: unknown) => {
        serialize ??= compile(route);
        return serialize(doc);
      };
    };
  };
}
