import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './proc.ts';

export interface JobResource {
  id: string;
  status: string;
  stage: string | null;
  completed_at: string | null;
  progress: { chunks_total: number; chunks_done: number; chunks_failed: number; percent: number };
  error: { code: string; message: string } | null;
  [key: string]: unknown;
}

export interface UploadResult {
  status: number;
  body: Record<string, unknown>;
  /** Spawn to exit of curl, ms. */
  ms: number;
  /** curl's own time_total, ms (connection to last byte of the answer). */
  curlMs: number;
}

/**
 * POSTs a file as multipart with curl, the client most users script uploads with; a separate process, so
 * the harness (which also hosts the fake provider) is not the bottleneck of the upload.
 */
export async function curlUpload(
  url: string,
  file: string,
  fields: Record<string, string> = {},
): Promise<UploadResult> {
  const args = ['-sS', '-X', 'POST', '-F', `file=@${file}`];
  for (const [k, v] of Object.entries(fields)) args.push('-F', `${k}=${v}`);
  args.push('-w', '\n%{http_code} %{time_total}', url);
  const r = await run('curl', args);
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  const lastNl = r.stdout.lastIndexOf('\n');
  const [status, total] = r.stdout
    .slice(lastNl + 1)
    .trim()
    .split(' ');
  const text = r.stdout.slice(0, lastNl);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { raw: text.slice(0, 500) };
  }
  return { status: Number(status), body, ms: r.ms, curlMs: Number(total) * 1000 };
}

export async function getJob(url: string, id: string): Promise<JobResource> {
  const res = await fetch(`${url}/v1/jobs/${id}`);
  if (res.status !== 200) throw new Error(`GET job ${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobResource;
}

/**
 * Polls /health/ready until it answers 200, as a load balancer or orchestrator sends traffic only to a ready
 * instance (the readiness answer includes the provider check, which a fresh process asks for at start).
 */
export async function waitForReady(url: string, timeoutMs: number, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/health/ready`).then(
      async (r) => {
        await r.body?.cancel();
        return r.status;
      },
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`the service was not ready within ${timeoutMs} ms (last ${status})`);
    await sleep(intervalMs);
  }
}

/** Polls until the job ends (completed, failed, cancelled) or the timeout passes. */
export async function waitForJob(url: string, id: string, timeoutMs: number, intervalMs = 100): Promise<JobResource> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJob(url, id);
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}/${job.stage} after ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Waits for every job in turn; throws unless each one completed. */
export async function waitForAllCompleted(url: string, ids: readonly string[], timeoutMs: number): Promise<void> {
  for (const id of ids) {
    const job = await waitForJob(url, id, timeoutMs, 200);
    if (job.status !== 'completed') throw new Error(`job ${id} ended ${job.status}`);
  }
}
