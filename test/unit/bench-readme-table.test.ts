import { describe, expect, it } from 'vitest';
import { aimMet, README_END, README_START, renderAimsTable, replaceMarked } from '../../bench/readme-table.ts';
import type { SummarizedMetric } from '../../bench/report.ts';

const row = (name: string, samples: number[], aim?: string): SummarizedMetric => {
  const s = [...samples].sort((a, b) => a - b);
  return {
    scenario: 'memory',
    name,
    unit: 'MiB',
    samples,
    ...(aim ? { aim } : {}),
    median: s[Math.floor(s.length / 2)] as number,
    min: s[0] as number,
    max: s.at(-1) as number,
    n: s.length,
  };
};

describe('the README table of aims (bench/readme-table.ts)', () => {
  it('judges each kind of aim, and leaves what it cannot judge to the text', () => {
    expect(aimMet('<= 1.2', 1.2)).toBe(true);
    expect(aimMet('<= 1.2', 1.2001)).toBe(false);
    expect(aimMet('>= 2.7', 2.69)).toBe(false);
    expect(aimMet('< 80', 79.9)).toBe(true);
    expect(aimMet('< 80', 80)).toBe(false);
    expect(aimMet('> 0', 0)).toBe(false);
    expect(aimMet('1', 1)).toBe(true);
    expect(aimMet('1', 0)).toBe(false);
    expect(aimMet('~0', 0)).toBeNull();
    expect(aimMet('<= 2', Number.NaN)).toBeNull();
  });

  it('lists only the metrics with an aim, with range and verdict', () => {
    const table = renderAimsTable(
      [row('idle RSS', [101, 102, 104], '< 80'), row('no aim', [1]), row('WAV peak', [124], '< 150')],
      { startedAt: '2026-12-05T09:30:00.000Z', commit: 'abcdef123', dirty: false, machine: 'm', command: 'c', runs: 3 },
    );
    expect(table).toContain('| memory | idle RSS | 102.0 [101.0-104.0] | MiB | < 80 | **no** |');
    expect(table).toContain('| memory | WAV peak | 124.0 | MiB | < 150 | yes |');
    expect(table).not.toContain('no aim');
    expect(table).toContain('commit `abcdef1`');
  });

  it('replaces only what lies between the markers, and refuses a README without them', () => {
    const readme = `a\n${README_START}\nold\n${README_END}\nb\n`;
    expect(replaceMarked(readme, 'new')).toBe(`a\n${README_START}\nnew\n${README_END}\nb\n`);
    expect(() => replaceMarked('no markers', 'x')).toThrow(/bench-aims/);
  });
});
