import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI_DIR, LAYERS } from '../../eslint.config.js';

const root = path.resolve(import.meta.dirname, '../..');
const RULE = '@typescript-eslint/no-restricted-imports';

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The layer messages ESLint reports for `code` as if it were the module at `file` (a path from the repository). */
async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  if (!result) throw new Error(`ESLint returned no result for ${file}`);
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe('import layers (eslint.config.js)', () => {
  it('places every folder and root module of src/ in a layer', () => {
    const placedDirs = new Set([CLI_DIR, ...LAYERS.flatMap((l) => l.dirs ?? [])]);
    const placedFiles = new Set(LAYERS.flatMap((l) => l.files ?? []));
    const entries = readdirSync(path.join(root, 'src'), { withFileTypes: true });
    const unplaced = entries
      .filter((e) => (e.isDirectory() ? !placedDirs.has(e.name) : !placedFiles.has(e.name)))
      .map((e) => e.name);
    expect(unplaced).toEqual([]);
  });

  it.each([
    ['src/chunker/x.ts', "import type { JobStore } from '../jobs/store.ts';", 'parts sits below jobs'],
    ['src/transcribe/providers/x.ts', "import { buildApp } from '../../http/app.ts';", 'parts sits below http'],
    ['src/resources/x.ts', "export { JobRunner } from '../jobs/runner.ts';", 'parts sits below jobs'],
    ['src/errors.ts', "import type { Config } from './config.ts';", 'base sits below parts'],
    ['src/config.ts', "import { JobStore } from './jobs/store.ts';", 'parts sits below jobs'],
    ['src/jobs/x.ts', "import { toJobResource } from '../http/job-resource.ts';", 'jobs sits below http'],
    [
      'src/scale/x.ts',
      "import type { HealthReport } from '../http/health-report.ts';",
      'job consumers sits below http',
    ],
    [
      'src/http/routes/x.ts',
      "import { createServices } from '../../service/wiring.ts';",
      'http sits below composition',
    ],
    ['src/service/x.ts', "import '../main.ts';", 'composition sits below entry'],
    ['src/jobs/types.ts', "import type { JobStore } from './store.ts';", 'The job model'],
    ['src/http/x.ts', "import { run } from '../cli/program.ts';", 'nothing in the service imports it'],
    ['src/cli/x.ts', "import { JobStore } from '../jobs/store.ts';", 'The CLI ships alone'],
    ['src/cli/x.ts', "import { JobResource } from '../http/schemas.ts';", 'The CLI takes only types'],
  ])('reports %s importing upward: %s', async (file, code, message) => {
    const errors = await layerErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(message);
  });

  it.each([
    ['src/validate/x.ts', "import type { JobRequest } from '../jobs/types.ts';"],
    ['src/resources/x.ts', "import { isJobId } from '../jobs/ids.ts';"],
    ['src/transcribe/providers/x.ts', "import type { Config } from '../../config.ts';"],
    ['src/config.ts', "import { PROVIDER_NAMES } from './transcribe/providers/index.ts';"],
    ['src/jobs/x.ts', "import { createSlicer } from '../chunker/slicer.ts';"],
    ['src/http/routes/x.ts', "import type { JobStore } from '../../jobs/store.ts';"],
    ['src/http/routes/x.ts', "import { errorResponses } from '../schemas.ts';"],
    ['src/service/x.ts', "import { buildApp } from '../http/app.ts';"],
    ['src/main.ts', "import { createServices } from './service/wiring.ts';"],
    ['src/cli/x.ts', "import type { JobResource } from '../http/schemas.ts';"],
    ['src/cli/x.ts', "import { JOB_STATUSES } from '../jobs/types.ts';"],
    ['src/cli/x.ts', "import { formatJob } from './format.ts';"],
  ])('allows %s: %s', async (file, code) => {
    expect(await layerErrors(file, code)).toEqual([]);
  });
});
