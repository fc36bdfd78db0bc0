// Pure display helpers for the page.

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return `${h > 0 ? `${h}:` : ''}${pad(m)}:${pad(s % 60)}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'unknown';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function bytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  return i === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

const STATUS_WORDS = {
  queued: 'Waiting in the queue',
  processing: 'Processing',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
const STAGE_WORDS = {
  validating: 'checking the file',
  slicing: 'cutting into chunks',
  transcribing: 'transcribing',
  stitching: 'joining the chunks',
};

/** The sentence the live region announces; it changes only when the status, stage or chunk counts change. */
export function statusSentence(job) {
  const p = job.progress;
  const head = STATUS_WORDS[job.status] ?? job.status;
  const stage = job.status === 'processing' && job.stage ? `: ${STAGE_WORDS[job.stage] ?? job.stage}` : '';
  const chunks = `${p.chunks_done} of ${p.chunks_total} chunks done`;
  return `${head}${stage}. ${chunks}.`;
}

export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function localTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
