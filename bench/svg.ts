import { summarize } from './lib/stats.ts';

export interface ChartPoint {
  concurrency: number;
  wallS: number[];
  idealS: number[];
}

export interface ChartInput {
  title: string;
  points: ChartPoint[];
  /** The naive script's wall times at its concurrency, drawn as one marker. */
  baseline?: { concurrency: number; wallS: number[]; label: string };
}

const W = 640;
const H = 400;
const M = { left: 60, right: 20, top: 40, bottom: 50 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

/** Wall time against concurrency: medians with min-max whiskers, the ideal schedule as a dashed line. */
export function renderChart(input: ChartInput): string {
  const cs = input.points.map((p) => p.concurrency);
  const maxC = Math.max(...cs, input.baseline?.concurrency ?? 0);
  const allS = input.points.flatMap((p) => [...p.wallS, ...p.idealS]).concat(input.baseline?.wallS ?? []);
  const maxS = niceMax(Math.max(...allS, 0) * 1.05);
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const x = (c: number) => r1(M.left + (c / maxC) * (W - M.left - M.right));
  const y = (s: number) => r1(H - M.bottom - (s / maxS) * (H - M.top - M.bottom));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(input.title)}</text>`);
  // Axes and grid.
  for (let i = 0; i <= 5; i++) {
    const s = (maxS / 5) * i;
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(s)}" y2="${y(s)}" stroke="#ddd"/>`);
    parts.push(`<text x="${M.left - 6}" y="${y(s) + 4}" text-anchor="end">${Number(s.toFixed(1))}</text>`);
  }
  for (const c of cs) parts.push(`<text x="${x(c)}" y="${H - M.bottom + 18}" text-anchor="middle">${c}</text>`);
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(0)}" y2="${y(0)}" stroke="black"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${y(0)}" stroke="black"/>`);
  parts.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">TRANSCRIBE_CONCURRENCY</text>`);
  parts.push(
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">wall time upload to completed (s)</text>`,
  );

  const ideal = input.points
    .filter((p) => p.idealS.length > 0)
    .map((p) => `${x(p.concurrency)},${y(summarize(p.idealS).median)}`);
  if (ideal.length > 0)
    parts.push(
      `<polyline points="${ideal.join(' ')}" fill="none" stroke="#2a9d34" stroke-width="2" stroke-dasharray="6 4"/>`,
    );
  const measured = input.points.filter((p) => p.wallS.length > 0);
  parts.push(
    `<polyline points="${measured.map((p) => `${x(p.concurrency)},${y(summarize(p.wallS).median)}`).join(' ')}" fill="none" stroke="#1f5fbf" stroke-width="2"/>`,
  );
  for (const p of measured) {
    const s = summarize(p.wallS);
    parts.push(
      `<line x1="${x(p.concurrency)}" x2="${x(p.concurrency)}" y1="${y(s.min)}" y2="${y(s.max)}" stroke="#1f5fbf"/>`,
    );
    parts.push(`<circle cx="${x(p.concurrency)}" cy="${y(s.median)}" r="4" fill="#1f5fbf"/>`);
    parts.push(
      `<text x="${x(p.concurrency) + 8}" y="${y(s.median) - 6}" fill="#1f5fbf">${s.median.toFixed(1)} s</text>`,
    );
  }
  if (input.baseline && input.baseline.wallS.length > 0) {
    const s = summarize(input.baseline.wallS);
    const bx = x(input.baseline.concurrency);
    parts.push(`<rect x="${bx - 4}" y="${y(s.median) - 4}" width="8" height="8" fill="#c0392b"/>`);
    parts.push(
      `<text x="${bx + 8}" y="${y(s.median) + 14}" fill="#c0392b">${esc(input.baseline.label)} ${s.median.toFixed(1)} s</text>`,
    );
  }
  // Legend.
  const lx = W - M.right - 190;
  parts.push(
    `<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 6}" y2="${M.top + 6}" stroke="#1f5fbf" stroke-width="2"/><text x="${lx + 30}" y="${M.top + 10}">measured (median, min-max)</text>`,
  );
  parts.push(
    `<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 24}" y2="${M.top + 24}" stroke="#2a9d34" stroke-width="2" stroke-dasharray="6 4"/><text x="${lx + 30}" y="${M.top + 28}">ideal schedule</text>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
