import type { JobResource } from '../http/schemas.ts';

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
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return 'unknown';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Audio seconds per wall-clock second: "12x real time", "0.8x real time". */
export function formatSpeed(speed: number): string {
  return `${speed >= 10 ? Math.round(speed) : speed.toFixed(1)}x real time`;
}

export function percentOf(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
}

const STAGE_WORDS: Record<string, string> = {
  validating: 'checking the recording',
  slicing: 'cutting the recording into chunks',
  transcribing: 'transcribing',
  stitching: 'joining the chunks into one transcript',
};

/** What the chunks in flight are doing: "1 with the engine, 2 waiting, 1 retrying, next try in 12s". */
function chunkActivityWords(job: JobResource, nowMs: number): string {
  const p = job.progress;
  const parts: string[] = [];
  if (p.chunks_sending > 0) parts.push(`${p.chunks_sending} with the engine`);
  if (p.chunks_pending > 0) parts.push(`${p.chunks_pending} waiting`);
  if (p.waiting) {
    // Held by the provider's circuit: the chunks are fine, the engine is not answering.
    parts.push(`engine unavailable, paused${untilWords(p.waiting.until, nowMs)}`);
  } else if (p.chunks_retrying > 0) {
    const next =
      p.retrying
        .map((r) => r.next_try_at)
        .filter((t): t is string => t !== null)
        .sort()[0] ?? null;
    parts.push(`${p.chunks_retrying} retrying${next ? `, next try${untilWords(next, nowMs)}` : ''}`);
  }
  return parts.join(', ');
}

function untilWords(iso: string | null, nowMs: number): string {
  const at = iso === null ? Number.NaN : Date.parse(iso);
  return Number.isFinite(at) ? ` in ${formatDuration(Math.max(0, (at - nowMs) / 1000))}` : '';
}

/** The job's state in words: "queued, waiting for a worker", "transcribing (2 with the engine, 3 waiting)", "done". */
export function stageWords(job: JobResource, nowMs: number): string {
  switch (job.status) {
    case 'queued':
      return 'queued, waiting for a worker';
    case 'completed':
      return 'done';
    case 'failed':
    case 'cancelled':
      return job.status;
    case 'processing': {
      const words = (job.stage && STAGE_WORDS[job.stage]) ?? 'processing';
      const activity = job.stage === 'transcribing' ? chunkActivityWords(job, nowMs) : '';
      return activity ? `${words} (${activity})` : words;
    }
  }
}

/** What the client measured itself while following: how long it has waited and how fast audio gets done. */
export interface FollowView {
  elapsedS: number;
  /** Audio seconds transcribed per wall-clock second since following began; null until some audio is done. */
  speed: number | null;
  nowMs: number;
}

/** The parts of a job update that matter to a person; used to print a plain line only when one of them changes. */
export function jobProgressKey(job: JobResource): string {
  const p = job.progress;
  return [
    job.status,
    job.stage ?? '',
    p.chunks_done,
    p.chunks_total,
    p.chunks_failed,
    p.chunks_retrying,
    p.chunks_sending,
    p.waiting ? 'held' : '',
  ].join('|');
}

/** "audio 1m 10s of 3m 00s, 12x real time" */
export function audioProgress(job: JobResource, speed: number | null): string {
  const audio = `audio ${formatDuration(job.progress.audio_s_done)} of ${formatDuration(job.audio.duration_s)}`;
  return speed === null ? audio : `${audio}, ${formatSpeed(speed)}`;
}

/**
 * One plain line: "job_x transcribing (1 with the engine): 2/4 chunks 47.3%, audio 1m 10s of 3m 00s, 12x real
 * time, elapsed 6s, eta 12s (1 failed)".
 */
export function jobProgressLine(job: JobResource, view: FollowView): string {
  const p = job.progress;
  const live = job.status === 'processing' || job.status === 'queued';
  const eta = live ? `, eta ${formatDuration(p.eta_s)}` : '';
  const failed = p.chunks_failed > 0 ? ` (${p.chunks_failed} failed)` : '';
  return (
    `${job.id} ${stageWords(job, view.nowMs)}: ${p.chunks_done}/${p.chunks_total} chunks ${p.percent}%, ` +
    `${audioProgress(job, view.speed)}, elapsed ${formatDuration(view.elapsedS)}${eta}${failed}`
  );
}

/** `status <id>` for people: a few labelled lines. */
export function jobDetails(job: JobResource, nowMs: number): string {
  const p = job.progress;
  const lines = [
    `id:        ${job.id}`,
    `status:    ${job.status}${job.stage ? ` (${job.stage})` : ''}: ${stageWords(job, nowMs)}`,
    `file:      ${job.audio.filename} (${formatBytes(job.audio.size_bytes)}, ${formatDuration(job.audio.duration_s)} of audio)`,
    `progress:  ${p.chunks_done}/${p.chunks_total} chunks, ${p.percent}%, ${audioProgress(job, null)}` +
      (p.chunks_retrying ? `, ${p.chunks_retrying} retrying` : '') +
      (p.chunks_failed ? `, ${p.chunks_failed} failed` : ''),
    `eta:       ${formatDuration(p.eta_s)}`,
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
  return (
    rows
      .map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  '))
      .join('\n') + '\n'
  );
}
