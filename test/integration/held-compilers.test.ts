import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const HEAP_TUNING = path.resolve(import.meta.dirname, '../../src/resources/heap-tuning.ts');

/**
 * A fresh node (V8's flags are per process) runs one hot function while the compilers are held and again after
 * they are released, and reports V8's own view of it (%GetOptimizationStatus: bit 4 = optimized code, bit 15 =
 * baseline code; V8's runtime-test-helpers). No timing: the counts are far past every tier-up threshold.
 */
const CHILD = `
import { holdCompilers } from ${JSON.stringify(HEAP_TUNING)};
const release = holdCompilers();
function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
const values = Array.from({ length: 1000 }, (_, i) => i);
const status = () => { const s = %GetOptimizationStatus(hot); return { optimized: (s & 16) !== 0, baseline: (s & 32768) !== 0 }; };
for (let i = 0; i < 20000; i++) hot(values);
const held = status();
release();
for (let i = 0; i < 20000; i++) hot(values);
process.stdout.write(JSON.stringify({ held, released: status() }));
`;

describe('holdCompilers', () => {
  it('keeps hot code unoptimized while held and lets V8 optimize it once released', async () => {
    const { stdout } = await run(process.execPath, [
      '--allow-natives-syntax',
      '--experimental-strip-types',
      '--input-type=module',
      '-e',
      CHILD,
    ]);
    const out = JSON.parse(stdout) as Record<'held' | 'released', { optimized: boolean; baseline: boolean }>;
    expect(out.held).toEqual({ optimized: false, baseline: false });
    expect(out.released.optimized).toBe(true);
  });
});
