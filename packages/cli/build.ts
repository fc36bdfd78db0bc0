// Builds the CLI package: src/cli bundled with commander and cli-progress into one executable file, so the
// packed tarball has no dependencies and `npm install -g` of it needs no registry. Run from anywhere in the
// repository (it reads the repository's node_modules); `npm pack` runs it as the package's prepack step.
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'rolldown';

const here = import.meta.dirname;
const root = path.resolve(here, '../..');
const dist = path.join(here, 'dist');
const entry = path.join(root, 'src/cli/main.ts');
const bundle = path.join(dist, 'chunkscribe.js');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const result = await build({
  input: entry,
  platform: 'node',
  logLevel: 'warn',
  write: false,
  output: { format: 'esm', file: bundle },
});
const chunk = result.output.find((o) => o.type === 'chunk');
if (!chunk || result.output.length !== 1)
  throw new Error(`expected one bundled chunk, got ${result.output.length} outputs`);

// The entry's own `#!/usr/bin/env node` line stays first: rolldown keeps a hashbang at the top of the entry.
if (!chunk.code.startsWith('#!/usr/bin/env node\n')) throw new Error('the bundle lost the entry hashbang');
await writeFile(bundle, chunk.code);
await chmod(bundle, 0o755);

// The bundled packages' licenses travel with the copy of their code (MIT asks for the notice).
const packages = new Map<string, string>();
for (const id of chunk.moduleIds) {
  const m = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(id);
  if (m) packages.set(m[1]!, id.slice(0, m.index + m[0].length));
}
const notices: string[] = [];
for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
  const meta = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
    version: string;
    license?: string;
  };
  const license = await readLicense(dir);
  notices.push(`## ${name}@${meta.version} (${meta.license ?? 'see below'})\n\n${license.trim()}\n`);
}
await writeFile(
  path.join(dist, 'THIRD_PARTY_LICENSES.md'),
  `# Third-party code bundled in chunkscribe.js\n\n${notices.join('\n')}`,
);

async function readLicense(dir: string): Promise<string> {
  const file = (await readdir(dir)).find((name) => /^(licen[cs]e|copying)([-.].*)?$/i.test(name));
  if (!file) throw new Error(`no license file in ${dir}: cannot bundle it without its notice`);
  return readFile(path.join(dir, file), 'utf8');
}

process.stdout.write(
  `built ${path.relative(root, bundle)} (${Math.round(chunk.code.length / 1024)} KB, ${packages.size} bundled packages)\n`,
);
