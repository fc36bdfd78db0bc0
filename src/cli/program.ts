import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiError, createApiClient } from './api-client.ts';
import { JOB_STATUSES } from '../jobs/types.ts';
import { TRANSCRIPT_FORMATS } from '../transcribe/formats.ts';
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from './completion.ts';
import { inCliTerms } from './error-text.ts';
import { CliError, DEFAULT_SERVER, EXIT, type CliIo, type CommandContext, type GlobalOptions } from './context.ts';
import { cancelCommand, getCommand, listCommand, statusCommand } from './job-commands.ts';
import { createProgressReporter, pickProgressMode } from './progress-reporter.ts';
import { transcribeCommand, type TranscribeFlags } from './transcribe-command.ts';

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    return n;
  };
}

/** "Examples:" after a command's help: the lines a person would copy. */
function examples(...lines: Array<[string, string]>): string {
  const width = Math.max(...lines.map(([cmd]) => cmd.length));
  return `\nExamples:\n${lines.map(([cmd, why]) => `  $ ${cmd.padEnd(width)}  # ${why}`).join('\n')}\n`;
}

const formatOption = () =>
  new Option('-f, --format <format>', 'transcript format (default: from the -o extension, else txt)').choices(
    TRANSCRIPT_FORMATS,
  );
const pollOption = () =>
  new Option('--poll-interval <ms>', 'how often to ask for progress where the server has no event stream')
    .default(1000)
    .argParser(positiveInt('--poll-interval', 60_000));

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
    reporter: createProgressReporter({ stream: io.stderr, mode, now: io.now }),
  };
}

export function createProgram(io: CliIo): Command {
  const program = new Command('chunkscribe')
    .description('Command-line client for the chunkscribe transcription service.')
    .version(io.version, '-V, --version')
    .option('--server <url>', `service address (env CHUNKSCRIBE_SERVER, default ${DEFAULT_SERVER})`)
    .option(
      '--api-key <key>',
      'bearer key when the service has API_KEYS (env CHUNKSCRIBE_API_KEY, which keeps it out of `ps`)',
    )
    .option('--json', 'machine output on stdout: the job resource, the list, or the error body')
    .option('--no-progress', 'no progress bars or lines on stderr')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .addHelpText(
      'after',
      examples(
        ['chunkscribe transcribe talk.mp3 -o talk.srt', 'upload, follow, write subtitles'],
        ['chunkscribe --server http://transcribe.example:3000 jobs', 'list the jobs on another host'],
        ['chunkscribe status job_abc123 --follow', 'follow a job started elsewhere'],
        ['source <(chunkscribe completion bash)', 'Tab completion in this shell'],
      ) +
        `\nEnvironment: CHUNKSCRIBE_SERVER (default ${DEFAULT_SERVER}), CHUNKSCRIBE_API_KEY.\n` +
        'Exit codes: 0 done, 1 failed (the error code is printed), 2 usage error, 130 interrupted.\n',
    );

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
    .addHelpText(
      'after',
      examples(
        ['chunkscribe transcribe meeting.m4a', 'the transcript as text on stdout'],
        ['chunkscribe transcribe talk.mp3 -o talk.srt --language en', 'SRT subtitles, format from the extension'],
        ['chunkscribe transcribe hearing.wav --dry-run', 'only the duration, chunks and cost estimate'],
        ['chunkscribe transcribe long.flac --no-wait', 'print the job id and return at once'],
        ['chunkscribe --json transcribe talk.mp3 -o talk.vtt', 'the finished job as JSON on stdout'],
      ),
    )
    .action(async (file: string, flags: TranscribeFlags, cmd: Command) =>
      transcribeCommand(file, flags, contextFor(cmd, io)),
    );

  program
    .command('jobs')
    .description('list jobs, newest first')
    .addOption(new Option('--status <status>', 'only jobs in this state').choices(JOB_STATUSES))
    .addOption(new Option('--limit <n>', 'how many').default(20).argParser(positiveInt('--limit', 100)))
    .option('--cursor <cursor>', 'next page, from the previous listing')
    .addHelpText(
      'after',
      examples(
        ['chunkscribe jobs', 'the 20 newest jobs'],
        ['chunkscribe jobs --status failed --limit 5', 'the 5 newest failed jobs'],
        ["chunkscribe --json jobs | jq -r '.items[].id'", 'ids for a script'],
      ),
    )
    .action(async (flags: { status?: string; limit: number; cursor?: string }, cmd: Command) =>
      listCommand(flags, contextFor(cmd, io)),
    );

  program
    .command('status')
    .description("show a job's state and progress")
    .argument('<id>', 'job id')
    .option('--follow', 'keep following until it ends (exit 1 unless it completes)')
    .addOption(pollOption())
    .addHelpText(
      'after',
      examples(
        ['chunkscribe status job_abc123', 'state, progress, engine, error'],
        ['chunkscribe status job_abc123 --follow', 'progress until it ends; exit 0 only if it completed'],
      ),
    )
    .action(async (id: string, flags: { follow?: boolean; pollInterval: number }, cmd: Command) =>
      statusCommand(id, flags, contextFor(cmd, io)),
    );

  program
    .command('get')
    .description("download a job's transcript")
    .argument('<id>', 'job id')
    .addOption(formatOption())
    .option('-o, --output <path>', 'write it here (default: stdout)')
    .option('--partial', 'the chunks finished so far, before the job completes')
    .addHelpText(
      'after',
      examples(
        ['chunkscribe get job_abc123 -o talk.srt', 'SRT, format from the extension'],
        ['chunkscribe get job_abc123 --format vtt > talk.vtt', 'WebVTT on stdout'],
        ['chunkscribe get job_abc123 --partial', 'what is transcribed so far of a running job'],
      ),
    )
    .action(async (id: string, flags: { format?: string; output?: string; partial?: boolean }, cmd: Command) =>
      getCommand(id, flags, contextFor(cmd, io)),
    );

  program
    .command('cancel')
    .description('cancel a job if it runs, then delete its audio and transcript')
    .argument('<id>', 'job id')
    .addHelpText('after', examples(['chunkscribe cancel job_abc123', 'stop it and delete its audio and transcript']))
    .action(async (id: string, _flags: unknown, cmd: Command) => cancelCommand(id, contextFor(cmd, io)));

  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(COMPLETION_SHELLS))
    .addHelpText(
      'after',
      examples(
        ['source <(chunkscribe completion bash)', 'Tab completion in this bash'],
        ['chunkscribe completion bash > ~/.local/share/bash-completion/completions/chunkscribe', 'every new bash'],
        ["echo 'source <(chunkscribe completion zsh)' >> ~/.zshrc", 'every new zsh'],
      ),
    )
    .action((shell: CompletionShell) => {
      io.stdout.write(completionScript(shell, program));
    });

  return program;
}

/** Prints a failure the same way whichever side found it; --json also puts the contract's error body on stdout. */
function report(io: CliIo, json: boolean, code: string, message: string, details?: Record<string, unknown>): void {
  io.stderr.write(`error: ${code}: ${message}\n`);
  if (json)
    io.stdout.write(`${JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } }, null, 2)}\n`);
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
      report(io, json, err.code, inCliTerms(err.code, err.message, err.details), err.details);
      return EXIT.failed;
    }
    if (err instanceof CliError) {
      report(io, json, err.code, err.message, err.details);
      return err.exitCode;
    }
    throw err;
  }
}
