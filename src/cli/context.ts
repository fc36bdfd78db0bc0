import type { JobResource } from '../http/schemas.ts';
import { isTranscriptFormat, TRANSCRIPT_FORMATS, type TranscriptFormat } from '../transcribe/formats.ts';
import type { ApiClient } from './api-client.ts';
import type { ProgressReporter } from './progress-reporter.ts';

export const DEFAULT_SERVER = 'http://127.0.0.1:3000';

/** Exit codes a script can tell apart. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export type OutStream = NodeJS.WritableStream & { isTTY?: boolean };

/** The process edges the CLI touches, injected so the commands never reach for globals. */
export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C: uploads and follows stop and say how to find the job again. */
  signal: AbortSignal;
  /** Epoch ms: the one clock for elapsed times, speeds and "retry in" texts. */
  now: () => number;
  version: string;
}

export interface GlobalOptions {
  server: string;
  apiKey: string | undefined;
  json: boolean;
  progress: boolean;
}

export interface CommandContext {
  io: CliIo;
  global: GlobalOptions;
  client: ApiClient;
  reporter: ProgressReporter;
}

/** A failure found on this side (a missing file, a failed job): printed like a server error, with its own exit code. */
export class CliError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, exitCode: number = EXIT.failed, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode;
    this.details = details;
  }
}

/** `-o talk.srt` alone is enough: the extension names the format when --format is not given. */
export function formatFor(explicit: string | undefined, output: string | undefined): TranscriptFormat {
  if (explicit !== undefined) {
    if (!isTranscriptFormat(explicit))
      throw new CliError('INVALID_FIELD', `--format must be one of ${TRANSCRIPT_FORMATS.join(', ')}.`, EXIT.usage);
    return explicit;
  }
  const ext = output?.split('.').pop()?.toLowerCase() ?? '';
  return output && isTranscriptFormat(ext) ? ext : 'txt';
}

export function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A job that ended without a transcript, as an error carrying the job's own code. */
export function jobFailed(job: JobResource): CliError {
  if (job.status === 'cancelled') return new CliError('CANCELLED', `Job ${job.id} was cancelled.`);
  const code = job.error?.code ?? 'INTERNAL';
  const partial =
    job.progress.chunks_done > 0 ? ` The chunks that were transcribed: \`chunkscribe get ${job.id} --partial\`.` : '';
  return new CliError(code, `Job ${job.id} failed: ${job.error?.message ?? 'no reason given'}${partial}`);
}
