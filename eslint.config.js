import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, bottom first. A module may import its own layer and the layers below it, never one above:
 * the parts know nothing of how jobs are stored and run, the job engine knows nothing of HTTP, and only the
 * composition root (service/) and the process entry see everything. A folder belongs to one layer; `files` place
 * single modules. config.ts (and its parts in config/) reads the environment into the parts' own settings, checked
 * against their registries (the engines), and logger.ts is made from it, so both sit with the parts. jobs/types.ts and jobs/ids.ts are the
 * job model (data shapes, constants and pure predicates, no I/O): the parts describe their inputs with it, so it
 * sits with them too, below the rest of jobs/.
 * The CLI is no layer: it ships alone (packages/cli bundles it), so it imports only the shared constants of
 * CLI_SHARES and the contract's types, never the server. test/unit/import-layers.test.ts checks that every folder
 * and root module of src/ has a layer here and that a wrong import is reported.
 */
export const LAYERS = [
  { name: 'base', files: ['errors.ts'] },
  {
    name: 'parts',
    dirs: ['config', 'chunker', 'transcribe', 'resources', 'storage', 'validate'],
    files: ['config.ts', 'logger.ts', 'jobs/types.ts', 'jobs/ids.ts'],
  },
  { name: 'jobs', dirs: ['jobs'] },
  { name: 'job consumers', dirs: ['retention', 'webhooks', 'metrics', 'scale'] },
  { name: 'http', dirs: ['http'] },
  { name: 'composition', dirs: ['service'] },
  { name: 'entry', files: ['main.ts', 'server.ts'] },
];
export const CLI_DIR = 'cli';
/** What the CLI may import from the rest of src/ (paths from src/): values and types. */
export const CLI_SHARES = ['jobs/types.ts', 'transcribe/formats.ts'];
/** What the CLI may import types from: the HTTP contract it is a client of. */
export const CLI_TYPE_SHARES = ['http/schemas.ts'];

const RULE = '@typescript-eslint/no-restricted-imports';
/** Deepest folder nesting under src/ the rules are generated for (src/a/b/c.ts is depth 2). */
const MAX_DEPTH = 3;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** How a module `depth` folders under src/ spells the way back to src/ in a relative import. */
const toSrc = (depth) => (depth === 0 ? '\\./' : `(?:\\.\\./){${depth}}`);
const CLI_MESSAGE = 'The CLI is a client of the service: nothing in the service imports it.';

/**
 * A regex matching an import, written from `depth` folders under src/, of anything in `layer`, except the single
 * modules of `placedBelow` (modules of its folders that belong to a lower layer).
 */
function layerTarget(layer, depth, placedBelow = []) {
  const inDir = (d) => {
    const kept = placedBelow.filter((f) => f.startsWith(`${d}/`)).map((f) => `${escape(f.slice(d.length + 1))}$`);
    return `${escape(d)}/${kept.length > 0 ? `(?!${kept.join('|')})` : ''}`;
  };
  const alternatives = [...(layer.dirs ?? []).map(inDir), ...(layer.files ?? []).map((f) => `${escape(f)}$`)];
  return `^${toSrc(depth)}(?:${alternatives.join('|')})`;
}

/** The modules placed in `layer`, as globs of the modules `depth` folders deep. */
function layerFiles(layer, depth) {
  const inDirs = depth >= 1 ? (layer.dirs ?? []).map((d) => `src/${d}/${'*/'.repeat(depth - 1)}*.ts`) : [];
  const single = (layer.files ?? []).filter((f) => f.split('/').length - 1 === depth).map((f) => `src/${f}`);
  return [...inDirs, ...single];
}

/**
 * One config object per layer and depth (the regexes are exact about the way back to src/). A rule's options
 * replace those of an earlier object, so the single modules placed apart from their folder come after it.
 */
function layerRules() {
  const objects = [];
  for (const [i, layer] of LAYERS.entries()) {
    // Modules placed in this layer or below are importable wherever their folder is.
    const placedBelow = LAYERS.slice(0, i + 1).flatMap((l) => l.files ?? []);
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const files = layerFiles(layer, depth);
      if (files.length === 0) continue;
      const patterns = [
        ...LAYERS.slice(i + 1).map((above) => ({
          regex: layerTarget(above, depth, placedBelow),
          message: `${layer.name} sits below ${above.name} (eslint.config.js, LAYERS): move what both need down a layer, or have the wiring pass it in.`,
        })),
        { regex: `^${toSrc(depth)}${CLI_DIR}/`, message: CLI_MESSAGE },
      ];
      objects.push({ files, rules: { [RULE]: ['error', { patterns }] } });
    }
  }
  // The job model's siblings in jobs/ are above it.
  const model = LAYERS[1].files.filter((f) => f.startsWith('jobs/'));
  const siblings = model.map((f) => `${escape(f.slice('jobs/'.length))}$`).join('|');
  const modelMessage = 'The job model (jobs/types.ts, jobs/ids.ts) sits with the parts, below';
  objects.push({
    files: model.map((f) => `src/${f}`),
    rules: {
      [RULE]: [
        'error',
        {
          patterns: [
            ...LAYERS.slice(2).map((above) => ({
              regex: layerTarget(above, 1, model),
              message: `${modelMessage} ${above.name} (eslint.config.js, LAYERS).`,
            })),
            { regex: `^\\./(?!${siblings})`, message: `${modelMessage} the rest of jobs/ (eslint.config.js, LAYERS).` },
            { regex: `^\\.\\./${CLI_DIR}/`, message: CLI_MESSAGE },
          ],
        },
      ],
    },
  });
  const shares = [...CLI_SHARES, ...CLI_TYPE_SHARES].map((f) => `${escape(f)}$`).join('|');
  objects.push({
    files: [`src/${CLI_DIR}/**/*.ts`],
    rules: {
      [RULE]: [
        'error',
        {
          patterns: [
            {
              regex: `^(?:\\.\\./)+(?!${shares})`,
              message: `The CLI ships alone: from the rest of src/ it imports only ${CLI_SHARES.join(', ')} and the types of ${CLI_TYPE_SHARES.join(', ')}.`,
            },
            {
              regex: `^(?:\\.\\./)+(?:${CLI_TYPE_SHARES.map(escape).join('|')})$`,
              allowTypeImports: true,
              message: `The CLI takes only types from ${CLI_TYPE_SHARES.join(', ')} (import type): its code would pull the server's dependencies into the bundle.`,
            },
          ],
        },
      ],
    },
  });
  return objects;
}

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'packages/*/dist/',
      'node_modules/',
      '.tools/',
      'data/',
      'bench/results/',
      'test/fixtures/generated/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  ...layerRules(),
  {
    // Warnings, so a long or branchy function shows in review before it grows further (tests are exempt: a
    // describe block is long by nature).
    files: ['src/**/*.ts'],
    rules: {
      complexity: ['warn', 15],
      'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['bench/**', 'scripts/**'],
    languageOptions: { globals: globals.node },
    rules: { 'no-console': 'off' },
  },
);
