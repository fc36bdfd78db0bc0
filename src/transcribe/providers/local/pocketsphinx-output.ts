import type { ChildProcess } from 'node:child_process';
import { lineSplitter } from '../../../chunker/line-splitter.ts';

const STDERR_KEEP = 20;
const TAIL_KEEP = 5;
/** A kept stderr line is cut to this: pocketsphinx's own are under 200 characters. */
const STDERR_LINE_CHARS = 1024;

export type OutputStream = 'stdout' | 'stderr';

/**
 * What pocketsphinx may print on each of stdout and stderr for a chunk of `durationS` seconds before it is taken
 * for a runaway: 64 KiB plus 8 KiB a second, counted on at least 60 s as the timeout is. Measured on the LibriVox
 * clips (198 s of speech, 2026-12-06): ~120 B/s of stdout, ~8.5 KB of stderr at start then ~240 B/s; a decoder
 * that ends a word every 3 frames (the fewest a phone's HMM takes) prints under 4 KB/s of stdout.
 */
export function outputLimitBytes(durationS: number): number {
  const seconds = Number.isFinite(durationS) ? Math.max(60, durationS) : 60;
  return 64 * 1024 + 8 * 1024 * Math.ceil(seconds);
}

export interface PocketsphinxOutput {
  /** stdout as printed (all of it: the watch stops reading once a stream is past the limit). */
  stdout(): string;
  /** The error lines of pocketsphinx's chatty stderr, or its last lines when it printed none. */
  stderrSummary(): string;
  /** The stream that went past the limit first, or null. */
  overflowed(): OutputStream | null;
  /** Once the child closed: its unfinished last stderr line counts too. */
  end(): void;
}

/**
 * Reads a pocketsphinx child's stdout and stderr within `maxBytes` each, keeping only stdout and a few stderr
 * lines (each cut to 1 KiB); past the limit it stops reading and calls `onOverflow` once (which stops the child).
 */
export function watchOutput(child: ChildProcess, maxBytes: number, onOverflow: () => void): PocketsphinxOutput {
  const stdout: Buffer[] = [];
  const printed = { stdout: 0, stderr: 0 };
  const errorLines: string[] = [];
  const tail: string[] = [];
  let overflowed: OutputStream | null = null;

  /** Counts what a stream printed; false once a stream is past the limit. */
  const within = (stream: OutputStream, bytes: number): boolean => {
    if (overflowed) return false;
    printed[stream] += bytes;
    if (printed[stream] <= maxBytes) return true;
    overflowed = stream;
    onOverflow();
    return false;
  };
  const stderrLines = lineSplitter((line) => {
    if (/^(ERROR|FATAL)/.test(line) && errorLines.length < STDERR_KEEP) errorLines.push(line);
    tail.push(line);
    if (tail.length > TAIL_KEEP) tail.shift();
  }, STDERR_LINE_CHARS);
  child.stdout?.on('data', (b: Buffer) => {
    if (within('stdout', b.length)) stdout.push(b);
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    if (within('stderr', Buffer.byteLength(s))) stderrLines.push(s);
  });

  return {
    stdout: () => Buffer.concat(stdout).toString('utf8'),
    stderrSummary: () => (errorLines.length > 0 ? errorLines : tail).join('\n').trim() || '(no stderr)',
    overflowed: () => overflowed,
    end: () => stderrLines.end(),
  };
}
