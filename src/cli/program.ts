import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiError, createApiClient } from './api-client.ts';
import { JOB_STATUSES } from '../jobs/types.ts';
import { TRANSCRIPT_FORMATS } from '../transcribe/formats.ts';
import { CliError, DEFAULT_SERVER, EXIT, type CliIo, type CommandContext, type GlobalOptions } from './context.ts';
import { cancelCommand, getCommand, listCommand, statusCommand } from './job-commands.ts';
import { createProgressReporter, pickProgressMode } from './progress-reporter.ts';
import { transcribeCommand, type TranscribeFlags } from './transcribe-command.ts';

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    return n;
  };
}

const formatOption = () => new Option('-f, --format <format>', 'transcript format (default: from the -o extension, else txt)').choices(TRANSCRIPT_FORMATS);
const pollOption = () =>
  new Option('--poll-interval <ms>', 'how often to ask for progress').default(1000).argParser(positiveInt('--poll-interval', 60_000));

function contextFor(cmd: Command, io: CliIo): CommandContext {
  const opts = cmd.optsWithGlobals<{ server?: string; apiKey?: string; json?: boolean; progress?: boolean }>();
  const global: GlobalOptions = {
    server: opts.server ?? io.env.CHUNKSCRIBE_SERVER ?? DEFAULT_SERVER,
    apiKey: opts.apiKey ?? (io.env.CHUNKSCRIBE_API_KEY || undefined),
    json: opts.json ?? false,
    progress: opts.progress ?? true,
  };
  // Progress and notes go to stderr so stdout carries only the result (a transcript, JSON) and can be piped.
  const mode = pickProgressMode({ progress: global.progress, isTTY: io.stderr.isTTY, env: io.env });
  return {
    io,
    global,
    client: createApiClient({ server: global.server, apiKey: global.apiKey }),
    reporter: createProgressReporter({ stream: io.stderr, mode }),
  };
}

export function createProgram(io: CliIo): Command {
  const program = new Command('chunkscribe')
    .description('Command-line client for the chunkscribe transcription service.')
    .version(io.version, '-V, --version')
    .option('--server <url>', `service address (env CHUNKSCRIBE_SERVER, default ${DEFAULT_SERVER})`)
    .option('--api-key <key>', 'bearer key when the service has API_KEYS (env CHUNKSCRIBE_API_KEY, which keeps it out of `ps`)')
    .option('--json', 'machine output on stdout: the job resource, the list, or the error body')
    .option('--no-progress', 'no progress bars or lines on stderr')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  program
    .command('transcribe')
    .description('upload a recording, follow its progress and write the transcript')
    .argument('<file>', 'audio or video file')
    .addOption(formatOption())
    .option('-o, --output <path>', 'write the transcript here (default: stdout)')
    .option('--language <code>', 'ISO-639-1 language of the speech, e.g. en')
    .option('--model <name>', 'transcription model known to the service')
    .option('--prompt <text>', 'context for the engine: names, spellings, topic')
    .option('--metadata <json>', 'a JSON object stored with the job')
    .option('--callback-url <url>', 'the service POSTs the finished job here')
    .option('--max-cost-usd <usd>', 'refuse the job if the estimate is higher')
    .option('--idempotency-key <key>', 'a repeat with the same key returns the same job')
    .option('--dry-run', 'only validate and print the estimate')
    .option('--no-wait', 'print the job id after the upload instead of following it')
    .addOption(pollOption())
    .action(async (file: string, flags: TranscribeFlags, cmd: Command) => transcribeCommand(file, flags, contextFor(cmd, io)));

  program
    .command('jobs')
    .description('list jobs, newest first')
    .addOption(new Option('--status <status>', 'only jobs in this state').choices(JOB_STATUSES))
    .addOption(new Option('--limit <n>', 'how many').default(20).argParser(positiveInt('--limit', 100)))
    .option('--cursor <cursor>', 'next page, from the previous listing')
    .action(async (flags: { status?: string; limit: number; cursor?: string }, cmd: Command) => listCommand(flags, contextFor(cmd, io)));

  program
    .command('status')
    .description("show a job's state and progress")
    .argument('<id>', 'job id')
    .option('--follow', 'keep following until it ends (exit 1 unless it completes)')
    .addOption(pollOption())
    .action(async (id: string, flags: { follow?: boolean; pollInterval: number }, cmd: Command) => statusCommand(id, flags, contextFor(cmd, io)));

  program
    .command('get')
    .description("download a job's transcript")
    .argument('<id>', 'job id')
    .addOption(formatOption())
    .option('-o, --output <path>', 'write it here (default: stdout)')
    .option('--partial', 'the chunks finished so far, before the job completes')
    .action(async (id: string, flags: { format?: string; output?: string; partial?: boolean }, cmd: Command) =>
      getCommand(id, flags, contextFor(cmd, io)),
    );

  program
    .command('cancel')
    .description('cancel a job if it runs, then delete its audio and transcript')
    .argument('<id>', 'job id')
    .action(async (id: string, _flags: unknown, cmd: Command) => cancelCommand(id, contextFor(cmd, io)));

  return program;
}

/** Prints a failure the same way whichever side found it; --json also puts the contract's error body on stdout. */
function report(io: CliIo, json: boolean, code: string, message: string, details?: Record<string, unknown>): void {
  io.stderr.write(`error: ${code}: ${message}\n`);
  if (json) io.stdout.write(`${JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } }, null, 2)}\n`);
}

/** Runs one command line and returns the exit code (0 ok, 1 failed, 2 usage, 130 interrupted). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  const json = argv.includes('--json');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help) to stderr/stdout.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ApiError) {
      report(io, json, err.code, err.message, err.details);
      return EXIT.failed;
    }
    if (err instanceof CliError) {
      report(io, json, err.code, err.message);
      return err.exitCode;
    }
    throw err;
  }
}
