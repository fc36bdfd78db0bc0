import { afterEach, describe, expect, it, vi } from 'vitest';

/**
 * src/resources/env-schema.ts stands in for zod when src/config.ts reads the environment. Every variable of the
 * env schema is parsed with a wide set of values, once with it and once with zod itself (the same config module
 * loaded again with the stand-in replaced by zod): the values read and the messages must be the same.
 */

const MODULE = '../../src/resources/env-schema.ts';

const VALUES = [
  '',
  ' ',
  'abc',
  '0',
  '1',
  '-1',
  '1.5',
  '-1.5',
  '0.05',
  '0.5',
  '2',
  ' 7 ',
  '1e3',
  '0x10',
  '0b11',
  'Infinity',
  '-Infinity',
  'NaN',
  '1e400',
  '9007199254740993',
  '-9007199254740993',
  '65536',
  '100000000000',
  'true',
  'false',
  'yes',
  'fixed',
  'grow',
  'api',
  'worker',
  'all',
  'info',
  'silent',
  'openai',
  'local',
  'http://a',
  'https://h:9/x',
  ' http://a/b ',
  'http://exa\nmple.com',
  'ftp://host',
  'http:example.com',
  'HTTP://A',
  'localhost:3000',
  'http://',
  'mailto:a@b',
  's3://bucket/prefix',
  `whsec_${'A'.repeat(32)}`,
  `whsec_${'A'.repeat(32)}==`,
  'whsec_short',
  'a:b',
  'chunk_scribe-1',
  '/usr/share/x',
  'x'.repeat(300),
];

type Parse = (env: Record<string, string | undefined>) => unknown;

async function parser(): Promise<{ parse: Parse; keys: string[]; isZod: boolean }> {
  const { envSchema } = await import('../../src/config.ts');
  const parse: Parse = (env) => {
    const r = envSchema.safeParse(env);
    return r.success ? { data: r.data } : { issues: r.error.issues.map((i) => [i.path.join('.'), i.message]) };
  };
  return { parse, keys: Object.keys(envSchema.shape), isZod: '_zod' in envSchema };
}

describe('the env schema without zod', () => {
  afterEach(() => {
    vi.doUnmock(MODULE);
    vi.resetModules();
  });

  it('reads every variable as zod does: values, defaults and messages', async () => {
    vi.resetModules();
    const ours = await parser();
    vi.resetModules();
    vi.doMock(MODULE, async () => ({ z: (await import('zod')).z }));
    const zod = await parser();
    expect([ours.isZod, zod.isZod]).toEqual([false, true]);
    expect(ours.keys).toEqual(zod.keys);
    expect(ours.keys.length).toBeGreaterThan(50);

    expect(ours.parse({})).toEqual(zod.parse({}));
    let failures = 0;
    for (const key of ours.keys) {
      for (const value of VALUES) {
        const env = { [key]: value, UNRELATED: 'x' };
        const expected = zod.parse(env);
        if ('issues' in (expected as object)) failures++;
        expect(ours.parse(env), `${key}=${JSON.stringify(value)}`).toEqual(expected);
      }
    }
    // The values reach every kind of refusal, not only the happy path.
    expect(failures).toBeGreaterThan(1000);
    const all = Object.fromEntries(ours.keys.map((k, i) => [k, VALUES[i % VALUES.length]]));
    expect(ours.parse(all)).toEqual(zod.parse(all));
  });
});
