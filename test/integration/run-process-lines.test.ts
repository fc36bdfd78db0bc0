import { describe, expect, it } from 'vitest';
import { MAX_LINE_CHARS } from '../../src/chunker/line-splitter.ts';
import { runProcess } from '../../src/chunker/run-process.ts';

describe('runProcess line callbacks', () => {
  it('hands on a line without an end cut to MAX_LINE_CHARS, and the lines after it whole', async () => {
    const lines: string[] = [];
    const errLines: string[] = [];
    // 1 MB without a newline on each stream, then a short line.
    const big = "head -c 1000000 /dev/zero | tr '\\0' x";
    const r = await runProcess('sh', ['-c', `${big}; echo; echo done; (${big}; echo; echo fin) >&2`], {
      timeoutS: 30,
      stderrTailBytes: 16,
      onStdoutLine: (l) => lines.push(l),
      onStderrLine: (l) => errLines.push(l),
    });
    expect(r.code).toBe(0);
    expect(lines).toEqual(['x'.repeat(MAX_LINE_CHARS), 'done']);
    expect(errLines).toEqual(['x'.repeat(MAX_LINE_CHARS), 'fin']);
    expect(r.stderrTail).toBe(`${'x'.repeat(11)}\nfin\n`);
  });
});
