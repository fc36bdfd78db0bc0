import { describe, expect, it } from 'vitest';
import { fastifyDefaultSerializers, lazySerializers, type SerializerFactory } from '../../src/http/lazy-serializers.ts';

const ROUTE = {
  method: 'GET',
  url: '/v1/jobs/:id',
  httpStatus: '200',
  schema: {
    type: 'object',
    properties: { id: { type: 'string' }, progress: { type: 'number' } },
    required: ['id'],
  },
};

/** Fastify's default factory (what lazySerializers() wraps), with its compiles counted. */
function counting() {
  const counter = { compiles: 0 };
  const build: SerializerFactory = (externalSchemas, options) => {
    const compile = fastifyDefaultSerializers()(externalSchemas, options);
    return (route) => {
      counter.compiles++;
      return compile(route);
    };
  };
  return { counter, build };
}

describe('lazySerializers', () => {
  it('compiles a route status on its first answer, once, and serializes as fast-json-stringify does', () => {
    const { counter, build } = counting();
    const serialize = lazySerializers(build).build(undefined, undefined)(ROUTE);
    expect(counter.compiles).toBe(0);
    // fast-json-stringify drops what the schema does not name: the serializer in use is the schema's.
    expect(serialize({ id: 'j1', progress: 0.5, secret: 'not in the schema' })).toBe('{"id":"j1","progress":0.5}');
    expect(serialize({ id: 'j2' })).toBe('{"id":"j2"}');
    expect(counter.compiles).toBe(1);
  });

  it('compiles each schema with its nullable fields as type lists, so that no answer runs a validator', () => {
    const seen: unknown[] = [];
    const build: SerializerFactory = (externalSchemas, options) => {
      seen.push(externalSchemas);
      const compile = fastifyDefaultSerializers()(externalSchemas, options);
      return (route) => {
        seen.push(route.schema);
        return compile(route);
      };
    };
    const nullableId = { anyOf: [{ type: 'string' }, { type: 'null' }] };
    const external = { Shared: { $id: 'Shared', type: 'object', properties: { id: nullableId } } };
    const route = { ...ROUTE, schema: { type: 'object', properties: { id: nullableId, shared: { $ref: 'Shared' } } } };
    const serialize = lazySerializers(build).build(external, undefined)(route);
    expect(serialize({ id: null, shared: { id: 'x' } })).toBe('{"id":null,"shared":{"id":"x"}}');
    expect(seen).toEqual([
      { Shared: { $id: 'Shared', type: 'object', properties: { id: { type: ['string', 'null'] } } } },
      { type: 'object', properties: { id: { type: ['string', 'null'] }, shared: { $ref: 'Shared' } } },
    ]);
    // What the route registered (and the OpenAPI document shows) is left as written.
    expect(route.schema.properties.id).toEqual(nullableId);
  });

  it('compiles nothing for a route that never answers', () => {
    const { counter, build } = counting();
    const compile = lazySerializers(build).build(undefined, undefined);
    for (const httpStatus of ['200', '400', '404', '500']) compile({ ...ROUTE, httpStatus });
    expect(counter.compiles).toBe(0);
  });

  it('compiles the answers `warm` names, once, and only those', () => {
    const { counter, build } = counting();
    const serializers = lazySerializers(build);
    const compile = serializers.build(undefined, undefined);
    const ok = compile(ROUTE);
    compile({ ...ROUTE, httpStatus: '404' });
    // A schema per media type: JSON's is named without it, another's with it.
    // (fastify passes `contentType` beside the fields the compiler's type declares)
    const typed = (contentType: string, schema: object): typeof ROUTE =>
      ({ ...ROUTE, url: '/v1/other', contentType, schema }) as unknown as typeof ROUTE;
    const json = compile(typed('application/json', ROUTE.schema));
    compile(typed('text/plain', { type: 'string' }));
    serializers.warm(['GET /v1/jobs/:id 200']);
    expect(counter.compiles).toBe(1);
    serializers.warm(['GET /v1/other 200', 'GET /v1/other 200 text/plain']);
    expect(counter.compiles).toBe(3);
    expect(json({ id: 'j2', extra: 1 })).toBe('{"id":"j2"}');
    expect(counter.compiles).toBe(3);
    expect(() => serializers.warm(['POST /v1/unknown 202'])).toThrow(/No answer POST \/v1\/unknown 202/);
    serializers.warm(['GET /v1/jobs/:id 200']);
    expect(ok({ id: 'j1' })).toBe('{"id":"j1"}');
    // Warmed answers are not compiled again; the 404 never was.
    expect(counter.compiles).toBe(3);
  });
});
