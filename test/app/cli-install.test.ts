import { access, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, type TestServer } from '../helper.ts';
import { runCommand } from '../support/run-command.ts';

const PACKAGE = path.resolve(import.meta.dirname, '../../packages/cli');

/**
 * The CLI as a user gets it: `npm pack` of packages/cli (its prepack bundles src/cli), then `npm install -g` of the
 * tarball into a fresh prefix with --offline, so the install must need nothing but the tarball itself.
 */
describe('the chunkscribe command installed from a packed tarball', () => {
  const speech = speechFixture();
  let work: string;
  let bin: string;
  let installed: string;
  let server: TestServer;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'cs-cli-install-'));
    const npmEnv = { npm_config_cache: path.join(work, 'npm-cache'), npm_config_update_notifier: 'false' };
    const packed = path.join(work, 'packed');
    await mkdir(packed);
    const pack = await runCommand(
      'npm',
      ['pack', PACKAGE, '--pack-destination', packed, '--loglevel=error'],
      npmEnv,
      work,
    );
    expect(pack.code, pack.stderr).toBe(0);
    const tarballs = (await readdir(packed)).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);

    const prefix = path.join(work, 'prefix');
    const install = await runCommand(
      'npm',
      [
        'install',
        '-g',
        '--offline',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        path.join(packed, tarballs[0]!),
      ],
      npmEnv,
      work,
    );
    expect(install.code, install.stderr).toBe(0);
    bin = path.join(prefix, 'bin', 'chunkscribe');
    installed = path.join(prefix, 'lib', 'node_modules', 'chunkscribe-cli');
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', CHUNK_SECONDS: '10' });
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
    await removeDir(work);
  });

  it('is one file with no dependencies, and answers --help and --version', async () => {
    expect((await readdir(installed)).sort()).toEqual(['README.md', 'dist', 'package.json']);
    await expect(access(path.join(installed, 'node_modules'))).rejects.toThrow();
    const licenses = await readFile(path.join(installed, 'dist', 'THIRD_PARTY_LICENSES.md'), 'utf8');
    expect(licenses).toMatch(/^## commander@/m);
    expect(licenses).toMatch(/^## cli-progress@/m);

    const help = await runCommand(bin, ['--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: chunkscribe \[options\] \[command\]/);
    expect(help.stdout).toMatch(/\nExamples:\n/);
    const { version } = JSON.parse(await readFile(path.join(PACKAGE, 'package.json'), 'utf8')) as { version: string };
    const v = await runCommand(bin, ['--version']);
    expect(v.stdout).toBe(`${version}\n`);
  });

  // A generous bound: pocketsphinx on 2 shared cores can be slow when other suites run beside this one.
  it('transcribes a recording against a running service', { timeout: 300_000 }, async () => {
    const out = path.join(work, 'talk.txt');
    const run = await runCommand(
      bin,
      ['transcribe', speech.wav, '-o', out, '--language', 'en', '--poll-interval', '200'],
      {
        CHUNKSCRIBE_SERVER: server.url,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`wrote ${out}`);
    expect((await readFile(out, 'utf8')).toLowerCase()).toMatch(/\b(selfish|respectable)\b/);
  });
});
