import { stat, writeFile } from 'node:fs/promises';
import type { JobResource } from '../http/schemas.ts';
import type { DryRunEstimate } from './api-client.ts';
import { CliError, EXIT, formatFor, jobFailed, writeJson, type CommandContext } from './context.ts';
import { followJob } from './follow-job.ts';
import { formatBytes, formatDuration } from './format.ts';

export interface TranscribeFlags {
  format?: string;
  output?: string;
  language?: string;
  model?: string;
  prompt?: string;
  metadata?: string;
  callbackUrl?: string;
  maxCostUsd?: string;
  idempotencyKey?: string;
  dryRun?: boolean;
  wait: boolean;
  pollInterval: number;
}

/** The flags that go to the server untouched as form fields; it validates them and answers INVALID_FIELD. */
function formFields(flags: TranscribeFlags): Record<string, string> {
  const fields: Record<string, string> = {};
  const pass: Array<[string, string | undefined]> = [
    ['language', flags.language],
    ['model', flags.model],
    ['prompt', flags.prompt],
    ['metadata', flags.metadata],
    ['callback_url', flags.callbackUrl],
    ['max_cost_usd', flags.maxCostUsd],
  ];
  for (const [name, value] of pass) if (value !== undefined) fields[name] = value;
  if (flags.dryRun) fields.dry_run = 'true';
  return fields;
}

/** The usual reasons in words; any other errno is shown as its code. */
const FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

async function checkFile(file: string): Promise<number> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new CliError('FILE_MISSING', `${file} is not a regular file.`, EXIT.usage);
    return info.size;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new CliError(
      'FILE_MISSING',
      `Cannot read ${file}: ${FILE_ERRORS[code] ?? (code || String(err))}.`,
      EXIT.usage,
    );
  }
}

function interrupted(jobId: string | null): CliError {
  return jobId
    ? new CliError(
        'INTERRUPTED',
        `Stopped following ${jobId}; it goes on on the server. Follow it with \`chunkscribe status ${jobId} --follow\` or stop it with \`chunkscribe cancel ${jobId}\`.`,
        EXIT.interrupted,
      )
    : new CliError('INTERRUPTED', 'Upload interrupted; no job was created.', EXIT.interrupted);
}

/** Upload with a byte bar, follow with a chunk bar, then write the transcript in the asked format. */
export async function transcribeCommand(file: string, flags: TranscribeFlags, ctx: CommandContext): Promise<void> {
  const { client, reporter, io, global } = ctx;
  const format = formatFor(flags.format, flags.output);
  const size = await checkFile(file);
  let jobId: string | null = null;
  try {
    const created = await client.createJob({
      file,
      fields: formFields(flags),
      idempotencyKey: flags.idempotencyKey,
      onProgress: (sent, total) => reporter.uploadProgress(sent, total),
      signal: io.signal,
    });
    if ('dry_run' in created) return printEstimate(created, ctx);
    jobId = created.id;
    reporter.note(
      `uploaded ${file} (${formatBytes(size)}) as ${created.id}, ${formatDuration(created.audio.duration_s)} of audio`,
    );
    if (!flags.wait) {
      if (global.json) writeJson(io, created);
      else io.stdout.write(`${created.id}\n`);
      return;
    }
    const final = await followJob({
      client,
      id: created.id,
      intervalMs: flags.pollInterval,
      onUpdate: (job) => reporter.jobUpdate(job),
      onText: (text) => reporter.text(text),
      signal: io.signal,
    });
    reporter.stop();
    if (final.status !== 'completed') throw jobFailed(final);
    await deliver(final, format, flags.output, ctx);
  } catch (err) {
    reporter.stop();
    if (io.signal.aborted) throw interrupted(jobId);
    throw err;
  }
}

/** The transcript to a file (or stdout), and in --json mode the final job resource on stdout. */
async function deliver(
  job: JobResource,
  format: ReturnType<typeof formatFor>,
  output: string | undefined,
  ctx: CommandContext,
): Promise<void> {
  const { client, io, global, reporter } = ctx;
  if (!output && global.json) {
    writeJson(io, job);
    return;
  }
  const transcript = await client.getTranscript(job.id, format);
  if (output) {
    await writeFile(output, transcript);
    reporter.note(`wrote ${output} (${format}, ${formatBytes(Buffer.byteLength(transcript))})`);
    if (global.json) writeJson(io, job);
  } else {
    io.stdout.write(transcript.endsWith('\n') ? transcript : `${transcript}\n`);
  }
}

function printEstimate(estimate: DryRunEstimate, ctx: CommandContext): void {
  if (ctx.global.json) return writeJson(ctx.io, estimate);
  const e = estimate.estimate;
  ctx.io.stdout.write(
    `dry run: ${formatDuration(estimate.audio.duration_s)} of ${estimate.audio.format} audio, ${estimate.chunks_planned} chunks, ` +
      `${e.provider} ${e.model}, estimated $${e.cost_usd}\n`,
  );
}
