#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { runCli } from './program.ts';

// The process edge: real streams, env and Ctrl-C; everything below takes them as arguments.
const interrupt = new AbortController();
process.once('SIGINT', () => interrupt.abort());
// `chunkscribe get ... | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// package.json is two levels up from both src/cli and dist/cli.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
  version,
});
