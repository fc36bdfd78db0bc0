import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../src/errors.ts';

/**
 * The documentation is checked like code: links that resolve, one row per error code, one row per setting. A doc
 * that drifts from the service fails here, not in a reader's hands.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  'bench/README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The text a reader sees as prose: code blocks (fenced or indented by 4) and code spans hold no links. */
function prose(markdown: string): string {
  return markdown
    .replace(/^```[\s\S]*?^```/gm, '')
    .split('\n')
    .filter((line) => !line.startsWith('    '))
    .join('\n')
    .replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, text = ''] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = text
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative links of a markdown file: [text](target) outside code, absolute URLs left out. */
function relativeLinks(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?: +"[^"]*")?\)/g)]
    .map((m) => m[1] ?? '')
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** Backticked names in the first cell of each table row, e.g. `HOST`, `PORT`. */
function firstCellNames(markdown: string): string[] {
  return [...markdown.matchAll(/^\| ([^|]+) \|/gm)].flatMap((row) =>
    [...(row[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? ''),
  );
}

describe('documentation', () => {
  it.each(DOCS)('%s: every relative link names a file (and heading) that exists', (file) => {
    const text = read(file);
    const broken: string[] = [];
    for (const link of relativeLinks(text)) {
      const [target = '', anchor] = link.split('#');
      const resolved =
        target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURI(target));
      if (!resolved.startsWith(ROOT) || !existsSync(resolved)) {
        broken.push(`${link} (no such file)`);
        continue;
      }
      if (
        anchor !== undefined &&
        !(
          statSync(resolved).isFile() &&
          resolved.endsWith('.md') &&
          anchors(readFileSync(resolved, 'utf8')).has(anchor)
        )
      ) {
        broken.push(`${link} (no heading #${anchor})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('finds the links and headings it checks (the parsers are not blind)', () => {
    expect(relativeLinks('see [a](docs/a.md#x) and `[b](c.md)` and [c](https://example.org/)')).toEqual([
      'docs/a.md#x',
    ]);
    expect([...anchors('# Error codes\n## The `web` page\n## Error codes\n```\n# not a heading\n```')]).toEqual([
      'error-codes',
      'the-web-page',
      'error-codes-1',
    ]);
    expect(relativeLinks(read('README.md')).length).toBeGreaterThan(10);
  });

  it('README lists every error code once, with its status', () => {
    const rows = [...read('README.md').matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(ERROR_STATUS);
    expect(rows).toHaveLength(Object.keys(ERROR_STATUS).length);
  });

  it('docs/configuration.md has a row for every environment variable the service reads', () => {
    const source = read('src/config/env.ts');
    const schema = /const envSchema = z\.object\(\{\n([\s\S]*?)\n\}\);/.exec(source)?.[1];
    if (schema === undefined)
      throw new Error('src/config/env.ts: envSchema = z.object({...}); not found; update this test');
    const variables = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]);
    expect(variables.length).toBeGreaterThan(40);
    const documented = new Set(firstCellNames(read('docs/configuration.md')));
    expect(variables.filter((v) => v !== undefined && !documented.has(v))).toEqual([]);
    // The README's summary is a subset of the full table: no setting is documented only there.
    expect(
      firstCellNames(read('README.md').split('## Configuration')[1]?.split('\n## ')[0] ?? '').filter(
        (v) => !documented.has(v),
      ),
    ).toEqual([]);
  });
});
