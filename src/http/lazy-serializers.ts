import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';
import { serializerSchema } from './serializer-schema.ts';

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
 * One answer of a route, as `warm` names it: "METHOD url status" for JSON, e.g. "GET /v1/jobs/:id 200", else
 * followed by its media type.
 */
export type AnswerKey = `${string} ${string} ${string}`;

export interface LazySerializers {
  /** The factory for fastify's `schemaController.compilersFactory.buildSerializer`. */
  build: SerializerFactory;
  /**
   * Compiles now, where not compiled yet, the serializers of these answers (of routes registered so far; throws
   * for one that is not). For an answer that is about to be needed and a moment when the event loop has nothing
   * better to do.
   */
  warm(answers: readonly AnswerKey[]): void;
}

/**
 * Response serializers compiled on a route's first answer with that status rather than when the route is
 * registered. Fastify compiles one fast-json-stringify function per route and status code at start, ~6 MiB of
 * generated code and schema copies for this API, most of it for answers a given deployment never sends (docs,
 * metrics, every error status of every route). What is compiled, and how it serializes, is unchanged; a schema
 * fast-json-stringify cannot compile now fails that route's first answer instead of the start (the route tests
 * and test/app/openapi.test.ts answer from every route). A compile takes the event loop for up to ~0.1 s (the job
 * resource's schema), which `warm` lets a caller move to where it costs nothing. Each schema is compiled as
 * `serializerSchema` rewrites it (nullable fields as type lists), so a job's answers compile no validator on their
 * way out; a union of objects would, once, on its first answer (/health's three views are serialized each with its
 * own schema instead: branchSerializers).
 */
export function lazySerializers(build: SerializerFactory = fastifyDefaultSerializers()): LazySerializers {
  const compilers = new Map<string, () => void>();
  return {
    build: (externalSchemas, options) => {
      const compile = build(externalSchemas && serializerSchema(externalSchemas), options);
      return (route) => {
        let serialize: ((doc: unknown) => string) | undefined;
        const ready = (): ((doc: unknown) => string) =>
          (serialize ??= compile({ ...route, schema: serializerSchema(route.schema) }));
        // fastify passes a schema's media type beside the route's fields (the compiler's type does not declare it);
        // a JSON answer is named without it.
        const type = 'contentType' in route ? String(route.contentType) : 'application/json';
        const key = `${route.method} ${route.url} ${String(route.httpStatus)}`;
        compilers.set(type === 'application/json' ? key : `${key} ${type}`, () => void ready());
        return (doc: unknown) => ready()(doc);
      };
    },
    warm(answers) {
      for (const answer of answers) {
        const compile = compilers.get(answer);
        // A renamed route must not leave its warm-up silently doing nothing: every upload test would fail.
        if (!compile) throw new TypeError(`No answer ${answer} to warm`);
        compile();
      }
    },
  };
}

/**
 * Serializers for an answer whose schema is a union of objects (the served document describes the union) sent by a
 * handler that knows which branch each document is: one per branch, compiled on that branch's first use by
 * `build` as the app compiles its schemas (rewritten by `serializerSchema`). fast-json-stringify serializes a
 * union by running an ajv validator of each branch on the document, compiled on the first answer (~30 ms of the
 * event loop for /health's three views); a branch's own serializer compiles none and still drops every field the
 * branch does not name. `url` names the answer in a compile error.
 */
export function branchSerializers<K extends string>(
  url: string,
  branches: Readonly<Record<K, object>>,
  build: SerializerFactory = fastifyDefaultSerializers(),
): (branch: K) => (doc: unknown) => string {
  const compile = build();
  const compiled = new Map<K, (doc: unknown) => string>();
  return (branch) => {
    let serialize = compiled.get(branch);
    if (!serialize) {
      serialize = compile({ method: 'GET', url, httpStatus: '200', schema: serializerSchema(branches[branch]) });
      compiled.set(branch, serialize);
    }
    return serialize;
  };
}
