import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { envSchema, loadConfig } from '../../src/config.ts';
import { parseConfigTable, renderEnvExample, type ConfigRow } from '../../scripts/env-example.ts';

// As scripts/zod-env-schema.ts does for the script: the schema read through zod's own classes.
vi.mock('../../src/resources/env-schema.ts', async () => ({ z: (await import('zod')).z }));

const root = new URL('../../', import.meta.url);
const configDoc = readFileSync(new URL('docs/configuration.md', root), 'utf8');
const committed = readFileSync(new URL('.env.example', root), 'utf8');

/** The `NAME=value` lines of an env file with their comment marker taken off, empty values left out. */
function uncommented(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^# ([A-Z][A-Z0-9_]*)=(.*)$/gm)) {
    if (m[2] !== '') env[m[1] as string] = m[2] as string;
  }
  return env;
}

describe('.env.example', () => {
  it('is what scripts/env-example.ts generates from src/config.ts and docs/configuration.md', () => {
    const generated = renderEnvExample(envSchema, parseConfigTable(configDoc));
    expect(committed, 'stale: run  node --experimental-strip-types scripts/env-example.ts > .env.example').toBe(
      generated,
    );
  });

  it('names every variable of the schema once, and each value it shows is the default', () => {
    const env = uncommented(committed);
    const named = [...committed.matchAll(/^# ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect([...named].sort()).toEqual(Object.keys(envSchema.shape).sort());
    // Uncommenting every line must change nothing: the shown values are the defaults, and all of them valid.
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });
});

describe('renderEnvExample', () => {
  const schema = z.object({
    ALPHA: z.coerce.number().int().min(1).max(8).default(2),
    BETA: z.enum(['x', 'y']).optional(),
    GAMMA: z.coerce.number().positive().optional(),
  });
  const rows: ConfigRow[] = [
    {
      names: ['ALPHA', 'BETA'],
      defaults: '`2`, `x` when [ALPHA](#alpha) is 2',
      meaning: 'a pair; see [Alpha](#alpha)',
    },
    { names: ['GAMMA'], defaults: '–', meaning: 'a cap' },
  ];

  it('shows defaults, allowed values and meanings as comments', () => {
    const text = renderEnvExample(schema, rows);
    expect(text).toContain(
      [
        '# ALPHA, BETA: a pair; see Alpha',
        '# Default: `2`, `x` when ALPHA is 2',
        '# (ALPHA: integer, 1 to 8)',
        '# ALPHA=2',
        '# (BETA: one of: x, y)',
        '# BETA=',
        '',
        '# GAMMA: a cap',
        '# (GAMMA: number above 0)',
        '# GAMMA=',
        '',
      ].join('\n'),
    );
  });

  it('refuses a schema variable docs/configuration.md does not describe, a described one the schema lacks, and one described twice', () => {
    expect(() => renderEnvExample(schema, rows.slice(0, 1))).toThrow(
      'GAMMA: in src/config.ts but not in docs/configuration.md',
    );
    expect(() => renderEnvExample(schema, [...rows, { names: ['DELTA'], defaults: '–', meaning: 'gone' }])).toThrow(
      'DELTA: in docs/configuration.md but not in src/config.ts',
    );
    expect(() => renderEnvExample(schema, [...rows, { names: ['GAMMA'], defaults: '–', meaning: 'again' }])).toThrow(
      'GAMMA: in more than one row of docs/configuration.md',
    );
  });
});

describe('parseConfigTable', () => {
  it('reads the names, default and meaning of each row of docs/configuration.md', () => {
    const rows = parseConfigTable(configDoc);
    expect(rows[0]).toEqual({ names: ['HOST', 'PORT'], defaults: '`0.0.0.0`, `3000`', meaning: 'listen address' });
    expect(rows.every((r) => r.names.length > 0 && r.meaning.length > 0)).toBe(true);
  });

  it('refuses a file without the heading, or a row whose cells do not line up', () => {
    expect(() => parseConfigTable('# x\n## Other\n')).toThrow('docs/configuration.md has no "# Configuration" heading');
    expect(() => parseConfigTable('# Configuration\n| `A` | 1 |\n## Next\n')).toThrow('has 2 cells, not 3');
  });
});
