import type { ErrorCode } from '../errors.ts';
import type { JobRecord } from './types.ts';

/**
 * What happens to jobs, for whoever watches from outside the pipeline (metrics, webhooks). Listeners must not
 * throw and must not block: the HTTP layer and the runner call them inline.
 */
export interface JobEvents {
  /** Bytes of an upload's `file` part, once it is stored whole (before validation: refused uploads included). */
  uploadBytes(bytes: number): void;
  /** A new job was stored (not an idempotent replay). */
  accepted(job: JobRecord): void;
  /** POST /v1/jobs answered with an error (refused at any step: auth, rate limit, pressure, validation). */
  uploadRefused(code: ErrorCode): void;
  /** A runner took up a job that was still queued, at `at` (not a resumed one that was already processing). */
  started(job: JobRecord, at: Date): void;
  /** A job reached completed, failed or cancelled in this process. */
  ended(job: JobRecord): void;
}

/** Fans each event out to every listener, in order. */
export function combineJobEvents(...listeners: ReadonlyArray<Partial<JobEvents>>): JobEvents {
  return {
    uploadBytes: (bytes) => listeners.forEach((l) => l.uploadBytes?.(bytes)),
    accepted: (job) => listeners.forEach((l) => l.accepted?.(job)),
    uploadRefused: (code) => listeners.forEach((l) => l.uploadRefused?.(code)),
    started: (job, at) => listeners.forEach((l) => l.started?.(job, at)),
    ended: (job) => listeners.forEach((l) => l.ended?.(job)),
  };
}
