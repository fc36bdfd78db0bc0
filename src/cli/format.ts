import type { JobResource } from '../jobs/progress.ts';

/** Pure renderings of API data for people at a terminal; no I/O here so they stay easy to reason about. */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;

export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** "45s", "3m 05s", "1h 02m"; null (the server does not know yet) is "unknown". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return 'unknown';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function percentOf(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
}

/** The parts of a job update that matter to a person; used to print a plain line only when one of them changes. */
export function jobProgressKey(job: JobResource): string {
  const p = job.progress;
  return [job.status, job.stage ?? '', p.chunks_done, p.chunks_total, p.chunks_failed, p.chunks_retrying].join('|');
}

/** One plain line: "job_x processing/transcribing 2/4 chunks 47.3% (1 retrying) eta 12s". */
export function jobProgressLine(job: JobResource): string {
  const p = job.progress;
  const state = job.stage ? `${job.status}/${job.stage}` : job.status;
  const extra = [p.chunks_retrying > 0 ? `${p.chunks_retrying} retrying` : '', p.chunks_failed > 0 ? `${p.chunks_failed} failed` : '']
    .filter(Boolean)
    .join(', ');
  const eta = job.status === 'processing' || job.status === 'queued' ? ` eta ${formatEta(p.eta_s)}` : '';
  return `${job.id} ${state} ${p.chunks_done}/${p.chunks_total} chunks ${p.percent}%${extra ? ` (${extra})` : ''}${eta}`;
}

/** `status <id>` for people: a few labelled lines. */
export function jobDetails(job: JobResource): string {
  const lines = [
    `id:        ${job.id}`,
    `status:    ${job.status}${job.stage ? ` (${job.stage})` : ''}`,
    `file:      ${job.audio.filename} (${formatBytes(job.audio.size_bytes)}, ${formatEta(job.audio.duration_s)} of audio)`,
    `progress:  ${job.progress.chunks_done}/${job.progress.chunks_total} chunks, ${job.progress.percent}%` +
      (job.progress.chunks_retrying ? `, ${job.progress.chunks_retrying} retrying` : '') +
      (job.progress.chunks_failed ? `, ${job.progress.chunks_failed} failed` : ''),
    `eta:       ${formatEta(job.progress.eta_s)}`,
    `engine:    ${job.estimate.provider} ${job.estimate.model} (estimate $${job.estimate.cost_usd})`,
    `created:   ${job.created_at}`,
  ];
  if (job.completed_at) lines.push(`completed: ${job.completed_at}`);
  if (job.error) lines.push(`error:     ${job.error.code}: ${job.error.message}`);
  return `${lines.join('\n')}\n`;
}

/** `jobs` for people: aligned columns, newest first as the server sends them. */
export function jobsTable(jobs: readonly JobResource[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  const rows = [
    ['ID', 'STATUS', 'PROGRESS', 'CREATED', 'FILE'],
    ...jobs.map((j) => [
      j.id,
      j.stage && j.status === 'processing' ? `${j.status}/${j.stage}` : j.status,
      `${j.progress.chunks_done}/${j.progress.chunks_total} ${j.progress.percent}%`,
      j.created_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      j.audio.filename,
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n') + '\n';
}
