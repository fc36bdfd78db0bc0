import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOW_PRIORITY } from '../../src/chunker/run-process.ts';

const run = promisify(execFile);
const RUN_PROCESS = path.resolve(import.meta.dirname, '../../src/chunker/run-process.ts');

describe('runProcess lowPriority', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cs-nice-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The nice value a lowPriority child gets from a service itself started at `serviceNice`. */
  async function childNice(serviceNice: number): Promise<number> {
    const go = path.join(dir, `go-${serviceNice}`);
    const script = path.join(dir, `service-${serviceNice}.ts`);
    // The child notes its nice value once told to (runProcess has set it by then).
    await writeFile(
      script,
      `import { writeFileSync } from 'node:fs';
import { runProcess } from ${JSON.stringify(RUN_PROCESS)};
const child = runProcess('sh', ['-c', "while [ ! -e '${go}' ]; do sleep 0.01; done; cut -d' ' -f19 /proc/$$/stat"], {
  timeoutS: 30,
  lowPriority: true,
});
writeFileSync(${JSON.stringify(go)}, '');
process.stdout.write((await child).stdout);
`,
    );
    const { stdout } = await run('nice', [
      '-n',
      String(serviceNice),
      process.execPath,
      '--experimental-strip-types',
      script,
    ]);
    return Number(stdout.trim());
  }

  it('runs LOW_PRIORITY below the service, never above it when the service itself runs niced', async () => {
    // `nice -n` adds to the nice value this test runs at.
    const base = os.getPriority();
    expect(await childNice(0)).toBe(Math.min(19, base + LOW_PRIORITY));
    // A service at nice 12 (root may lower a nice value): its scans ahead of need at 19, not back up at 10.
    expect(await childNice(12)).toBe(Math.min(19, base + 12 + LOW_PRIORITY));
  });
});
