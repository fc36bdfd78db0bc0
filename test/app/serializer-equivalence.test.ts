import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fastifyDefaultSerializers, type SerializerFactory } from '../../src/http/lazy-serializers.ts';
import { serializerSchema } from '../../src/http/serializer-schema.ts';
import { startServer, type TestServer } from '../helper.ts';

type Schema = Record<string, unknown>;
type Route = Parameters<ReturnType<SerializerFactory>>[0];

/** Every answer's schema as fastify hands it to the serializer factory, as written (before the rewrite). */
const answers = vi.hoisted(() => new Map<string, { external: unknown; options: unknown; route: unknown }>());

vi.mock('../../src/http/lazy-serializers.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/http/lazy-serializers.ts')>();
  const { notingLazySerializers } = await import('../support/noting-serializers.ts');
  // The app's serializers are the real lazySerializers' (they rewrite the schemas); what the app gives them, as
  // written, is noted on the way in.
  return {
    ...real,
    lazySerializers: notingLazySerializers(real, (route, _serialize, { external, options }) => {
      const type = 'contentType' in route ? String(route.contentType) : 'application/json';
      answers.set(`${route.method} ${route.url} ${String(route.httpStatus)} ${type}`, {
        external: structuredClone(external),
        options,
        route: structuredClone(route),
      });
    }),
  };
});

/** Values a handler is not meant to produce, put at each place of a valid answer in turn. */
const ODD_VALUES: Array<() => unknown> = [
  () => null,
  () => 'not-in-any-enum',
  () => '2026-01-01 10:00:00',
  () => 7,
  () => 12.5,
  () => Number.POSITIVE_INFINITY,
  () => true,
  () => ['a', 3],
  () => ({ extra: 'x' }),
  () => new Date(0),
  () => new Error('an error object'),
];

/** A value `schema` allows (external schemas resolved by id), the first of each choice. */
function validValue(schema: Schema, external: Record<string, Schema>, depth = 0): unknown {
  const s = typeof schema.$ref === 'string' ? (external[schema.$ref.replace(/#$/, '')] ?? {}) : schema;
  if (depth > 10) return null;
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Schema[];
    return validValue(branches.find((b) => b.type !== 'null') ?? branches[0] ?? {}, external, depth + 1);
  }
  const type = Array.isArray(s.type) ? (s.type as string[]).find((t) => t !== 'null') : s.type;
  if (type === 'string') return s.format === 'date-time' ? '2026-01-01T00:00:00.000Z' : 'text';
  if (type === 'number') return 1.5;
  if (type === 'integer') return 2;
  if (type === 'boolean') return false;
  if (type === 'null') return null;
  if (type === 'array') return s.items ? [validValue(s.items as Schema, external, depth + 1)] : [];
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, Schema>))
    out[k] = validValue(v, external, depth + 1);
  for (const v of Object.values((s.patternProperties ?? {}) as Record<string, Schema>))
    out.name = validValue(v, external, depth + 1);
  return out;
}

type Path = Array<string | number>;

function pathsOf(value: unknown, at: Path = []): Path[] {
  if (Array.isArray(value)) return [at, ...value.flatMap((v, i) => pathsOf(v, [...at, i]))];
  if (value !== null && typeof value === 'object')
    return [at, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...at, k]))];
  return [at];
}

/** `doc` with `change` applied to the value at `path` (the root: its result is the document). */
function changed(
  doc: unknown,
  path: Path,
  change: (parent: Record<string | number, unknown>, key: string | number) => void,
) {
  const copy = structuredClone(doc);
  if (path.length === 0) return copy;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  change(parent, path[path.length - 1] as string | number);
  return copy;
}

/** Documents around a valid answer: each place given each odd value, removed, and each object given a field more. */
function documents(valid: unknown): unknown[] {
  const docs: unknown[] = [valid];
  for (const path of pathsOf(valid)) {
    if (path.length === 0) docs.push(...ODD_VALUES.map((odd) => odd()));
    for (const odd of ODD_VALUES) if (path.length > 0) docs.push(changed(valid, path, (p, k) => (p[k] = odd())));
    if (path.length > 0) docs.push(changed(valid, path, (p, k) => delete p[k]));
    docs.push(
      changed(valid, [...path, 'not_in_the_schema'], (p) => {
        if (p !== null && typeof p === 'object' && !Array.isArray(p)) p.not_in_the_schema = 'must not be sent';
      }),
    );
  }
  return docs;
}

const attempt = (serialize: (doc: unknown) => string, doc: unknown): string | Error => {
  try {
    return serialize(doc);
  } catch (err) {
    return err as Error;
  }
};

describe('the response schemas as the serializer is given them (serializerSchema)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
  });
  afterAll(async () => server?.close());

  it('answer every document the schemas as written serialize with the same bytes, on every route', () => {
    // The answers whose schemas have nullable fields must be among those compared.
    expect([...answers.keys()]).toEqual(
      expect.arrayContaining([
        'GET /v1/jobs/:id 200 application/json',
        'GET /v1/jobs 200 application/json',
        'GET /v1/models 200 application/json',
        'POST /v1/audio/transcriptions 400 application/json',
        'GET /health 200 application/json',
      ]),
    );
    let compared = 0;
    const differences: string[] = [];
    for (const [answer, { external, options, route }] of answers) {
      const factory = fastifyDefaultSerializers();
      const asWritten = factory(external as never, options as never)(route as Route);
      const r = route as Route & { schema: Schema };
      const rewritten = factory(
        (external && serializerSchema(external)) as never,
        options as never,
      )({
        ...r,
        schema: serializerSchema(r.schema),
      } as Route);
      const valid = validValue(r.schema, (external ?? {}) as Record<string, Schema>);
      for (const doc of documents(valid)) {
        const before = attempt(asWritten, doc);
        if (before instanceof Error) continue;
        compared++;
        const after = attempt(rewritten, doc);
        if (after !== before)
          differences.push(`${answer}: ${JSON.stringify(doc)}\n  as written: ${before}\n  rewritten: ${String(after)}`);
      }
    }
    expect(differences).toEqual([]);
    expect(compared).toBeGreaterThan(1000);
  });
});
