import { setTimeout as delay } from 'node:timers/promises';
import type { JobResource } from '../http/schemas.ts';
import { isLive } from '../jobs/types.ts';
import { ApiError, type ApiClient } from './api-client.ts';

export interface FollowOptions {
  client: Pick<ApiClient, 'getJob'>;
  id: string;
  intervalMs: number;
  onUpdate: (job: JobResource) => void;
  signal?: AbortSignal;
  /** Consecutive transient failures (no answer, 429, 503) tolerated before giving up. */
  maxTransientErrors?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function isTransient(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status === 503);
}

/**
 * Polls the job until it is completed, failed or cancelled, and returns that last state. A restart of the
 * service or a busy moment must not kill a long follow, so a few transient errors in a row are waited out.
 */
export async function followJob(options: FollowOptions): Promise<JobResource> {
  const sleep = options.sleep ?? ((ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal }));
  const maxTransient = options.maxTransientErrors ?? 10;
  let transient = 0;
  for (;;) {
    let job: JobResource;
    try {
      job = await options.client.getJob(options.id, options.signal);
      transient = 0;
    } catch (err) {
      if (!isTransient(err) || ++transient > maxTransient) throw err;
      await sleep(options.intervalMs * Math.min(2 ** transient, 8), options.signal);
      continue;
    }
    options.onUpdate(job);
    if (!isLive(job.status)) return job;
    await sleep(options.intervalMs, options.signal);
  }
}
