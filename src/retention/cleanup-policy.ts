import { isLive, type JobStatus } from '../jobs/types.ts';

export interface RetentionPolicy {
  /** Transcripts and job rows are purged this long after the job ended. */
  retentionMs: number;
  /** An ended job's upload is kept this long; 0 deletes it when the job ends. */
  uploadRetentionMs: number;
}

/** What the cleanup knows about one directory under DATA_DIR/jobs. */
export interface DirFacts {
  /** Null when the store has no row for it. */
  job: { status: JobStatus; endedAt: string | null } | null;
  /** Created by this process and not removed yet (an upload still streaming has no row). */
  inProcess: boolean;
}

/**
 * keep: a live job (or an upload in progress) needs it, or the ended job's upload is still retained.
 * remove-chunks: an ended job never needs chunk files again; its retained upload stays.
 * remove-dir: nothing references it any more.
 */
export type DirAction = 'keep' | 'remove-chunks' | 'remove-dir';

/** Pure: the cleanup's decision for one job directory. Under pressure retained uploads go at once. */
export function dirAction(facts: DirFacts, nowMs: number, policy: RetentionPolicy, emergency: boolean): DirAction {
  const { job } = facts;
  if (!job) return facts.inProcess ? 'keep' : 'remove-dir';
  if (isLive(job.status)) return 'keep';
  const endedMs = job.endedAt === null ? Number.NaN : Date.parse(job.endedAt);
  // An ended job without a readable end time has nothing to keep its upload for.
  if (emergency || Number.isNaN(endedMs) || nowMs - endedMs >= policy.uploadRetentionMs) return 'remove-dir';
  return 'remove-chunks';
}

/** The newest end time a job may have and still be purged now (rows, transcripts and files). */
export function purgeCutoff(nowMs: number, policy: RetentionPolicy): string {
  return new Date(nowMs - policy.retentionMs).toISOString();
}

export function validatePolicy(policy: RetentionPolicy & { intervalMs: number; orphanGraceMs?: number }): void {
  const checks: Array<[keyof typeof policy, number]> = [
    ['retentionMs', 1],
    ['uploadRetentionMs', 0],
    ['intervalMs', 1],
  ];
  if (policy.orphanGraceMs !== undefined) checks.push(['orphanGraceMs', 0]);
  for (const [key, min] of checks) {
    const value = policy[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new TypeError(`Expected \`${key}\` to be a finite number >= ${min}, got \`${String(value)}\``);
    }
  }
}
