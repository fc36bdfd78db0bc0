import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { summarize, type Metric, type Summary } from './lib/stats.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  ffmpeg: string;
  platform: string;
  kernel: string;
  loadavg1: number;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')[0]
        ?.trim() ?? ''
    );
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    ffmpeg: firstLine('ffmpeg', ['-version']),
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    loadavg1: os.loadavg()[0] ?? 0,
  };
}

export function gitInfo(cwd: string): { commit: string; dirty: boolean } {
  const commit = firstLine('git', ['-C', cwd, 'rev-parse', '--short', 'HEAD']);
  let dirty = false;
  try {
    dirty = execFileSync('git', ['-C', cwd, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    // Not a git checkout.
  }
  return { commit, dirty };
}

export type SummarizedMetric = Metric & Summary;

export function summarizeAll(metrics: readonly Metric[]): SummarizedMetric[] {
  return metrics.map((m) => ({ ...m, ...summarize(m.samples) }));
}

/** A figure with the digits a table shows: fewer as it grows. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 10) return x.toFixed(2);
  return x.toFixed(3);
}

/** One plain-text table: scenario, metric, median, min, max, unit, runs, aim. */
export function formatTable(rows: readonly SummarizedMetric[]): string {
  const header = ['scenario', 'metric', 'median', 'min', 'max', 'unit', 'n', 'aim'];
  const body = rows.map((r) => [
    r.scenario,
    r.name,
    fmt(r.median),
    fmt(r.min),
    fmt(r.max),
    r.unit,
    String(r.n),
    r.aim ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const numeric = new Set([2, 3, 4, 6]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(header), sep];
  let last = '';
  for (const b of body) {
    if (b[0] !== last && last !== '') out.push('');
    last = b[0] ?? '';
    out.push(line(b));
  }
  return out.join('\n');
}

/** The same table as GitHub markdown, for docs/performance.md. */
export function formatMarkdown(rows: readonly SummarizedMetric[]): string {
  const out = ['| scenario | metric | median | min | max | unit | aim |', '|---|---|---:|---:|---:|---|---|'];
  for (const r of rows)
    out.push(
      `| ${r.scenario} | ${r.name.trim()} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.unit} | ${r.aim ?? ''} |`,
    );
  return out.join('\n');
}
