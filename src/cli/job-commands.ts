import { writeFile } from 'node:fs/promises';
import { ApiError } from './api-client.ts';
import { CliError, EXIT, formatFor, jobFailed, writeJson, type CommandContext } from './context.ts';
import { followJob } from './follow-job.ts';
import { jobDetails, jobsTable } from './format.ts';

export async function listCommand(
  flags: { status?: string; limit: number; cursor?: string },
  ctx: CommandContext,
): Promise<void> {
  const page = await ctx.client.listJobs(flags);
  if (ctx.global.json) return writeJson(ctx.io, page);
  ctx.io.stdout.write(jobsTable(page.items));
  if (page.next_cursor) ctx.io.stdout.write(`more: chunkscribe jobs --cursor ${page.next_cursor}\n`);
}

export async function statusCommand(
  id: string,
  flags: { follow?: boolean; pollInterval: number },
  ctx: CommandContext,
): Promise<void> {
  const { client, io, global, reporter } = ctx;
  let job = await client.getJob(id);
  if (flags.follow) {
    try {
      job = await followJob({
        client,
        id,
        intervalMs: flags.pollInterval,
        onUpdate: (j) => reporter.jobUpdate(j),
        onText: (text) => reporter.text(text),
        signal: io.signal,
      });
    } catch (err) {
      if (io.signal.aborted)
        throw new CliError('INTERRUPTED', `Stopped following ${id}; it goes on on the server.`, EXIT.interrupted);
      throw err;
    } finally {
      reporter.stop();
    }
  }
  if (global.json) writeJson(io, job);
  else io.stdout.write(jobDetails(job, io.now()));
  if (flags.follow && job.status !== 'completed') throw jobFailed(job);
}

export async function getCommand(
  id: string,
  flags: { format?: string; output?: string; partial?: boolean },
  ctx: CommandContext,
): Promise<void> {
  const format = formatFor(flags.format, flags.output);
  let transcript: string;
  try {
    transcript = await ctx.client.getTranscript(id, format, flags.partial ?? false);
  } catch (err) {
    throw err instanceof ApiError && err.code === 'JOB_NOT_COMPLETED' ? notCompleted(id, err) : err;
  }
  if (flags.output) {
    await writeFile(flags.output, transcript);
    ctx.reporter.note(`wrote ${flags.output}`);
  } else {
    ctx.io.stdout.write(transcript.endsWith('\n') ? transcript : `${transcript}\n`);
  }
}

/** The server says "ask with partial=true"; here the way forward is a flag or a follow, named with this job's id. */
function notCompleted(id: string, err: ApiError): CliError {
  const status = typeof err.details?.status === 'string' ? err.details.status : 'not completed';
  const message =
    status === 'failed'
      ? `Job ${id} failed, so it has no full transcript; add --partial for the chunks that were transcribed.`
      : `Job ${id} is ${status}; its transcript is ready when it completes. Wait with \`chunkscribe status ${id} --follow\`, ` +
        'or add --partial for the chunks finished so far.';
  return new CliError(err.code, message, EXIT.failed, err.details);
}

export async function cancelCommand(id: string, ctx: CommandContext): Promise<void> {
  await ctx.client.cancelJob(id);
  if (ctx.global.json) writeJson(ctx.io, { id, deleted: true });
  else ctx.io.stdout.write(`cancelled and deleted ${id}\n`);
}
