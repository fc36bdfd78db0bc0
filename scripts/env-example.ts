/**
 * Generates .env.example, the commented env file for docker/compose.yaml, so that it cannot drift from the code:
 *   node --experimental-strip-types scripts/env-example.ts > .env.example
 * Names, defaults and allowed values come from the config schema (src/config.ts); what each setting means comes
 * from docs/configuration.md, the one place it is written (the schema carries no descriptions). A
 * schema variable missing from that table, or a table name the schema does not know, stops the generation:
 * test/unit/env-example.test.ts checks that the committed file is what this prints. The schema is read through
 * zod's own classes (bounds, defaults): src/config.ts is loaded with zod in place of its stand-in.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';

/** One row of docs/configuration.md: the variables it names and what it says about them. */
export interface ConfigRow {
  names: string[];
  defaults: string;
  meaning: string;
}

const WIDTH = 110;

/** The rows of the table in docs/configuration.md, in its order. */
export function parseConfigTable(doc: string): ConfigRow[] {
  if (!/^# Configuration\n/m.test(doc)) throw new Error('docs/configuration.md has no "# Configuration" heading');
  const rows: ConfigRow[] = [];
  for (const line of doc.split('\n')) {
    if (!line.startsWith('| `')) continue; // the header, its separator and the prose around the table
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (cells.length !== 3) throw new Error(`docs/configuration.md row has ${cells.length} cells, not 3: ${line}`);
    const [names, defaults, meaning] = cells as [string, string, string];
    rows.push({ names: [...names.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1] as string), defaults, meaning });
  }
  return rows;
}

/** Markdown as plain comment text: links keep their text, escaped pipes lose the backslash. */
function plain(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\([^)]*\)/g, '$1').replace(/\\\|/g, '|');
}

function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length + 1 + word.length > WIDTH && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

function unwrapped(type: z.ZodType): z.ZodType {
  if (type instanceof z.ZodDefault || type instanceof z.ZodOptional) return unwrapped(type.unwrap() as z.ZodType);
  return type;
}

/** What the schema accepts besides "a string", e.g. `one of: openai, local` or `integer, 1 to 64`. */
function accepted(type: z.ZodType): string | undefined {
  const inner = unwrapped(type);
  if (inner instanceof z.ZodEnum) return `one of: ${inner.options.join(', ')}`;
  if (!(inner instanceof z.ZodNumber)) return undefined;
  const kind = inner.isInt ? 'integer' : 'number';
  // minValue does not say whether the bound itself is allowed (`.positive()` reports 0): ask the schema.
  const min =
    inner.minValue === null ? null : { value: inner.minValue, allowed: inner.safeParse(inner.minValue).success };
  const max = inner.maxValue !== null && inner.maxValue < Number.MAX_SAFE_INTEGER ? inner.maxValue : null;
  if (min?.allowed === false)
    return max === null ? `${kind} above ${min.value}` : `${kind} above ${min.value}, at most ${max}`;
  if (min !== null && max !== null) return `${kind}, ${min.value} to ${max}`;
  if (min !== null) return `${kind}, at least ${min.value}`;
  return kind;
}

/** The value the schema gives an unset variable; undefined when it has none. */
function defaultOf(name: string, type: z.ZodType): string | undefined {
  const parsed = type.safeParse(undefined);
  if (!parsed.success)
    throw new Error(`${name}: the schema refuses an unset value, so it cannot be left commented out`);
  return parsed.data === undefined ? undefined : String(parsed.data);
}

/** The text of .env.example. Throws when docs/configuration.md and the schema do not name the same variables. */
export function renderEnvExample(schema: z.ZodObject, rows: ConfigRow[]): string {
  const shape = schema.shape as Record<string, z.ZodType>;
  const documented = rows.flatMap((r) => r.names);
  const undocumented = Object.keys(shape).filter((n) => !documented.includes(n));
  const unknown = documented.filter((n) => !(n in shape));
  const twice = documented.filter((n, i) => documented.indexOf(n) !== i);
  const problems = [
    ...undocumented.map((n) => `${n}: in src/config.ts but not in docs/configuration.md`),
    ...unknown.map((n) => `${n}: in docs/configuration.md but not in src/config.ts`),
    ...twice.map((n) => `${n}: in more than one row of docs/configuration.md`),
  ];
  if (problems.length > 0) throw new Error(problems.join('\n'));

  const out = [
    '# chunkscribe settings for docker/compose.yaml, which reads ../.env (its `env_file`): copy this file to .env',
    '# and uncomment what you change. Every line shows the default (empty: unset). In the container DATA_DIR, HOST,',
    '# PORT and OPEN_MODE_CLIENTS (any: compose publishes the port on 127.0.0.1 only) are fixed by compose.yaml;',
    '# PORT here is the host port, when compose runs with `--env-file .env`.',
    '# Compose expands ${...} in these values: write a literal $ as $$.',
    '#',
    '# Generated by scripts/env-example.ts from src/config.ts (names, defaults, allowed values) and',
    '# docs/configuration.md (meanings); do not edit by hand. After changing either:',
    '#   node --experimental-strip-types scripts/env-example.ts > .env.example',
  ];
  for (const row of rows) {
    out.push('', ...wrap(`${row.names.join(', ')}: ${plain(row.meaning)}`));
    const defaults = row.names.map((n) => defaultOf(n, shape[n] as z.ZodType));
    if (defaults.includes(undefined) && !/^[–-]$/.test(row.defaults))
      out.push(...wrap(`Default: ${plain(row.defaults)}`));
    row.names.forEach((name, i) => {
      const rule = accepted(shape[name] as z.ZodType);
      if (rule !== undefined) out.push(`# (${name}: ${rule})`);
      out.push(`# ${name}=${defaults[i] ?? ''}`);
    });
  }
  return `${out.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await import('./zod-env-schema.ts'); // before src/config.ts is loaded
  const { envSchema } = await import('../src/config.ts');
  const readme = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  process.stdout.write(renderEnvExample(envSchema, parseConfigTable(readme)));
}
