/**
 * The bench's own table of aims for the README: every metric of a run that carries an aim, with its median, range
 * and whether the median meets it. `npm run bench -- --readme` writes it between the README's markers, so the
 * figures a newcomer reads are the bench's output, not a copy typed by hand.
 */
import { fmt, type SummarizedMetric } from './report.ts';

export const README_START = '<!-- bench-aims:start -->';
export const README_END = '<!-- bench-aims:end -->';

/**
 * Whether `value` meets `aim`: "<= 1.2", ">= 2.7", "< 80", "> 0", or a bare number (exactly that). Null when the
 * aim is not a comparison the bench can judge (e.g. "~0", "unchanged").
 */
export function aimMet(aim: string, value: number): boolean | null {
  const m = /^\s*(<=|>=|<|>)?\s*(-?\d+(?:\.\d+)?)\s*$/.exec(aim);
  if (!m || !Number.isFinite(value)) return null;
  const target = Number(m[2]);
  switch (m[1]) {
    case '<=':
      return value <= target;
    case '>=':
      return value >= target;
    case '<':
      return value < target;
    case '>':
      return value > target;
    default:
      return value === target;
  }
}

export interface AimsTableMeta {
  startedAt: string;
  commit: string;
  dirty: boolean;
  machine: string;
  command: string;
  runs: number;
}

export function renderAimsTable(rows: readonly SummarizedMetric[], meta: AimsTableMeta): string {
  const withAims = rows.filter((r) => r.aim !== undefined);
  const out = [
    `Written by \`${meta.command}\` on ${meta.startedAt.slice(0, 16).replace('T', ' ')} UTC, commit ` +
      `\`${meta.commit.slice(0, 7)}\`${meta.dirty ? ' (with local changes)' : ''}, ${meta.machine}; median of ` +
      `${meta.runs} run${meta.runs === 1 ? '' : 's'} [min-max].`,
    '',
    '| case | metric | median [min-max] | unit | aim | met |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of withAims) {
    const met = aimMet(r.aim ?? '', r.median);
    const range = r.n > 1 ? ` [${fmt(r.min)}-${fmt(r.max)}]` : '';
    out.push(
      `| ${r.scenario} | ${r.name.trim()} | ${fmt(r.median)}${range} | ${r.unit} | ${r.aim} | ${met === null ? 'see text' : met ? 'yes' : '**no**'} |`,
    );
  }
  return out.join('\n');
}

/** `text` with what lies between the markers replaced by `block`; throws when the markers are missing. */
export function replaceMarked(text: string, block: string): string {
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`the README has no ${README_START} ... ${README_END} block`);
  return `${text.slice(0, start + README_START.length)}\n${block}\n${text.slice(end)}`;
}
