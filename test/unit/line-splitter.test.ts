import { describe, expect, it } from 'vitest';
import { lineSplitter } from '../../src/chunker/line-splitter.ts';

function split(chunks: string[], max?: number): string[] {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
}

describe('lineSplitter', () => {
  it('splits on \\n, \\r\\n and \\r, and joins a line that arrives in pieces', () => {
    expect(split(['a\nb\r\nc\rd', 'e', 'f\ng'])).toEqual(['a', 'b', 'c', 'def', 'g']);
  });

  it('hands on nothing at the end when the output ended with a newline', () => {
    expect(split(['a\n', 'b\n'])).toEqual(['a', 'b']);
  });

  it('cuts a line past the cap, drops the rest of it up to its newline, and reads the next line whole', () => {
    expect(split(['abc', 'def', 'ghi\njk', 'l\nmnopqrs'], 5)).toEqual(['abcde', 'jkl', 'mnopq']);
    // A line cut inside one piece, its newline in a later piece.
    expect(split(['0123456789', '0123', '\nx'], 5)).toEqual(['01234', 'x']);
    expect(split(['012345\n'], 5)).toEqual(['01234']);
  });
});
