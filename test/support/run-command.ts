import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A program run as a user runs it: its own process, pipes (so not a TTY), an environment of only PATH, HOME and
 * what is passed. The Node running the tests comes first on PATH, so `#!/usr/bin/env node` and npm use it too.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: cwd ?? os.tmpdir(),
      env: {
        PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: os.tmpdir(),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
