#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from './program.ts';

// The process edge: real streams, env and Ctrl-C; everything below takes them as arguments.
const interrupt = new AbortController();
process.once('SIGINT', () => interrupt.abort());
// `chunkscribe get ... | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/**
 * The version of the package this file ships in: the nearest package.json above it. That is the repository's for
 * src/cli and dist/cli, and the CLI package's own for its bundle (packages/cli/dist, or where npm installed it).
 */
function packageVersion(): string {
  let dir = import.meta.dirname;
  for (let level = 0; level < 4; level++) {
    try {
      return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return 'unknown';
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
  now: Date.now,
  version: packageVersion(),
});
