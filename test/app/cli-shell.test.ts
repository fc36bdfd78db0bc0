import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from '../helper.ts';
import { runCommand } from '../support/run-command.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const cli = (...args: string[]) => runCommand(process.execPath, [CLI, ...args]);
const COMMANDS = ['transcribe', 'jobs', 'status', 'get', 'cancel', 'completion'];

describe('chunkscribe help and shell completion', () => {
  let work: string;
  let bashScript: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'cs-cli-shell-'));
    const run = await cli('completion', 'bash');
    expect(run.code, run.stderr).toBe(0);
    bashScript = path.join(work, 'chunkscribe.bash');
    await writeFile(bashScript, run.stdout);
    // A file for the recording argument to complete to.
    await writeFile(path.join(work, 'talk.wav'), '');
  });
  afterAll(async () => {
    await removeDir(work);
  });

  it('shows examples in the help of the program and of every command', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/\nExamples:\n {2}\$ chunkscribe transcribe /);
    for (const name of COMMANDS) {
      const help = await cli(name, '--help');
      expect(help.code, `${name} --help`).toBe(0);
      expect(help.stdout, `${name} --help`).toMatch(
        new RegExp(`\\nExamples:\\n( {2}\\$ .*chunkscribe ${name}\\b.*\\n)+`),
      );
    }
  });

  /** Runs the completion function as bash does on Tab: COMP_WORDS holds the words, COMP_CWORD the one completed. */
  async function complete(words: string[]): Promise<string[]> {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const script = [
      'set -u',
      `source '${bashScript}'`,
      'fn=$(complete -p chunkscribe | sed -E "s/.* -F ([^ ]+) chunkscribe$/\\1/")',
      `COMP_WORDS=(${quoted})`,
      'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))',
      'COMPREPLY=()',
      '"$fn"',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const run = await runCommand('bash', ['--norc', '--noprofile', '-c', script], {}, work);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    return run.stdout.split('\n').filter(Boolean);
  }

  it('gives bash a script that registers a completion for chunkscribe', async () => {
    const run = await runCommand('bash', [
      '--norc',
      '--noprofile',
      '-c',
      `source '${bashScript}' && complete -p chunkscribe`,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^complete .*-F \S+ chunkscribe\n$/);
  });

  it('completes commands, options, their values and files', async () => {
    expect(await complete(['chunkscribe', ''])).toEqual(COMMANDS);
    expect(await complete(['chunkscribe', 'st'])).toEqual(['status']);
    // The value of a global option is not the command.
    expect(await complete(['chunkscribe', '--server', 'http://127.0.0.1:3000', 'tr'])).toEqual(['transcribe']);
    expect(await complete(['chunkscribe', '--se'])).toEqual(['--server']);
    expect(await complete(['chunkscribe', 'get', 'job_1', '--f'])).toEqual(['--format']);
    expect(await complete(['chunkscribe', 'get', 'job_1', '--format', ''])).toEqual(['json', 'txt', 'srt', 'vtt']);
    expect(await complete(['chunkscribe', 'jobs', '--status', 'c'])).toEqual(['completed', 'cancelled']);
    expect(await complete(['chunkscribe', 'status', 'job_1', '--'])).toEqual(
      expect.arrayContaining(['--follow', '--poll-interval', '--json', '--server']),
    );
    expect(await complete(['chunkscribe', 'transcribe', 'tal'])).toEqual(['talk.wav']);
    expect(await complete(['chunkscribe', 'completion', ''])).toEqual(['bash', 'zsh']);
    // Free-text values get no guesses (and no file names).
    expect(await complete(['chunkscribe', 'transcribe', 'talk.wav', '--language', ''])).toEqual([]);
  });

  // zsh is not on every machine (CI installs only what the suite needs); where it is, the script must load there.
  it.skipIf(spawnSync('zsh', ['--version']).status !== 0)(
    'gives zsh the same completion through its bash layer',
    async () => {
      const run = await cli('completion', 'zsh');
      expect(run.code).toBe(0);
      const zshScript = path.join(work, 'chunkscribe.zsh');
      await writeFile(zshScript, run.stdout);
      const zsh = await runCommand(
        'zsh',
        ['-f', '-c', `source '${zshScript}' && print -r -- "\${_comps[chunkscribe]}"`],
        { HOME: work },
        work,
      );
      expect(zsh.stderr).toBe('');
      expect(zsh.stdout).toBe('_bash_complete -o filenames -F _chunkscribe_complete\n');
    },
  );

  it('refuses a shell it has no script for', async () => {
    const run = await cli('completion', 'fish');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/'fish' is invalid for argument 'shell'\. Allowed choices are bash, zsh\./);
  });
});
