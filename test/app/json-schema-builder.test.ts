import { afterEach, describe, expect, it, vi } from 'vitest';
import { removeDir } from '../helper.ts';

/**
 * src/http/json-schema.ts stands in for TypeBox's `Type` at run time. Every schema it builds must be the one
 * TypeBox builds: the same module graph is loaded twice, once as it is and once with the builder replaced by
 * TypeBox itself, and what each gives is compared.
 */

type Module = Record<string, unknown>;

/** Own properties with their descriptors, hidden ones (`~kind`, `~optional`, `~unsafe`) included, recursively. */
function shape(value: unknown, seen = new Set<unknown>()): unknown {
  if (typeof value !== 'object' || value === null) return typeof value === 'function' ? '[function]' : value;
  if (seen.has(value)) return '[seen]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => shape(v, seen));
  return Reflect.ownKeys(value).map((key) => {
    const d = Object.getOwnPropertyDescriptor(value, key);
    return [String(key), d?.enumerable, shape(d?.value, seen)];
  });
}

async function withTypeBox<T>(load: () => Promise<T>): Promise<T> {
  vi.resetModules();
  vi.doMock('../../src/http/json-schema.ts', async () => ({ Type: (await import('typebox')).Type }));
  try {
    return await load();
  } finally {
    vi.doUnmock('../../src/http/json-schema.ts');
    vi.resetModules();
  }
}

const schemaModules = async (): Promise<Module[]> => [
  (await import('../../src/http/schemas.ts')) as Module,
  (await import('../../src/http/response-schemas.ts')) as Module,
  (await import('../../src/http/health-schemas.ts')) as Module,
  (await import('../../src/http/openai/schemas.ts')) as Module,
];

/** The document as served, byte for byte (key order included). */
async function servedDocument(): Promise<string> {
  const { startServer } = await import('../helper.ts');
  const server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
  try {
    const res = await fetch(`${server.url}/docs/json`);
    expect(res.status).toBe(200);
    return await res.text();
  } finally {
    await server.close();
    await removeDir(server.dataDir);
  }
}

describe('the JSON Schema builder', () => {
  afterEach(() => {
    vi.resetModules();
  });

  it('builds every exported HTTP schema exactly as TypeBox does, hidden markers included', async () => {
    const ours = await schemaModules();
    const theirs = await withTypeBox(schemaModules);
    expect(ours[0]).not.toBe(theirs[0]);
    for (const [i, mod] of ours.entries()) {
      const names = Object.keys(mod).filter((k) => typeof mod[k] === 'object');
      expect(names.length).toBeGreaterThan(1);
      for (const name of names) expect(shape(mod[name]), name).toEqual(shape(theirs[i]?.[name]));
    }
  });

  it("serves the same OpenAPI document (the routes' own schemas included)", async () => {
    const ours = await servedDocument();
    const theirs = await withTypeBox(servedDocument);
    expect(ours.length).toBeGreaterThan(10_000);
    expect(ours).toBe(theirs);
  });

  it('throws on a value TypeBox would not take as a literal', async () => {
    const { Type } = await import('../../src/http/json-schema.ts');
    expect(() => Type.Literal(Symbol('x') as unknown as string)).toThrow(TypeError);
  });
});
