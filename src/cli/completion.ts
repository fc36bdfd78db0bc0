import type { Command } from 'commander';

/**
 * Shell completion scripts generated from the program's own commands and options, so they cannot drift from
 * what the CLI accepts. Static: completing job ids would mean asking the service on every Tab.
 */

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

interface OptionSpec {
  names: string[];
  takesValue: boolean;
  /** The allowed values; empty when free text. */
  choices: readonly string[];
  /** The value is a path (`<path>`, `<file>`): complete file names. */
  isPath: boolean;
}

interface CommandSpec {
  name: string;
  options: OptionSpec[];
  /** A positional argument is a file to complete (transcribe's recording). */
  fileArgument: boolean;
  /** The values a positional argument allows (completion's shell); empty when free. */
  argumentChoices: readonly string[];
}

export interface CompletionSpec {
  program: string;
  globalOptions: OptionSpec[];
  commands: CommandSpec[];
}

// Commander adds these itself, outside `options`.
const HELP: OptionSpec = { names: ['-h', '--help'], takesValue: false, choices: [], isPath: false };
const VERSION: OptionSpec = { names: ['-V', '--version'], takesValue: false, choices: [], isPath: false };

function optionSpecs(cmd: Command): OptionSpec[] {
  return cmd.options
    .filter((o) => o.long !== '--version')
    .map((o) => ({
      names: [o.short, o.long].filter((n): n is string => n !== undefined),
      takesValue: o.required || o.optional,
      choices: o.argChoices ?? [],
      isPath: /<(path|file)>/.test(o.flags),
    }));
}

export function completionSpec(program: Command): CompletionSpec {
  return {
    program: program.name(),
    globalOptions: [...optionSpecs(program), HELP, VERSION],
    commands: program.commands.map((c) => ({
      name: c.name(),
      options: [...optionSpecs(c), HELP],
      fileArgument: c.registeredArguments.some((a) => a.name() === 'file'),
      argumentChoices: c.registeredArguments.flatMap((a) => a.argChoices ?? []),
    })),
  };
}

/** Every word here comes from our own option table; quoting is still applied so the script stays valid bash. */
function words(list: readonly string[]): string {
  return `'${list.join(' ').replace(/'/g, `'\\''`)}'`;
}

function valueCases(spec: CompletionSpec, indent: string): string[] {
  const lines: string[] = [];
  const add = (pattern: string, action: string) => lines.push(`${indent}${pattern}) ${action}; return ;;`);
  for (const c of spec.commands) {
    for (const o of c.options.filter((x) => x.takesValue)) {
      const pattern = o.names.map((n) => `${c.name}:${n}`).join('|');
      if (o.choices.length > 0) add(pattern, `COMPREPLY=($(compgen -W ${words(o.choices)} -- "$cur"))`);
      else if (o.isPath) add(pattern, `COMPREPLY=($(compgen -f -- "$cur"))`);
      else add(pattern, 'COMPREPLY=()');
    }
  }
  for (const o of spec.globalOptions.filter((x) => x.takesValue)) {
    add(o.names.map((n) => `*:${n}`).join('|'), 'COMPREPLY=()');
  }
  return lines;
}

export function bashCompletion(spec: CompletionSpec): string {
  const fn = `_${spec.program.replace(/[^A-Za-z0-9_]/g, '_')}_complete`;
  const valued = spec.globalOptions.filter((o) => o.takesValue).flatMap((o) => o.names);
  const longNames = (options: readonly OptionSpec[]) =>
    options.flatMap((o) => o.names.filter((n) => n.startsWith('--')));
  const globalWords = longNames(spec.globalOptions);
  // After a command, the program's options still apply (commander reads them anywhere), but not its --help/--version.
  const inheritedWords = longNames(spec.globalOptions.filter((o) => o !== HELP && o !== VERSION));
  const commandCases = spec.commands.map(
    (c) =>
      `    ${c.name}) opts=${words([...longNames(c.options), ...inheritedWords])}; files=${c.fileArgument ? 1 : 0}; values=${words(c.argumentChoices)} ;;`,
  );
  return `# ${spec.program} completion for bash. Load it with:  source <(${spec.program} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" opts="" files=0 values="" i=1 w
  [ "$COMP_CWORD" -gt 0 ] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # The command is the first word that is neither an option nor the value of a global option.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${valued.length > 0 ? valued.join('|') : '--no-such-option'}) i=$((i + 1)) ;;
      -*) ;;
      *) cmd="$w"; break ;;
    esac
    i=$((i + 1))
  done
  case "$cmd:$prev" in
${valueCases(spec, '    ').join('\n')}
  esac
  if [ -z "$cmd" ]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W ${words(globalWords)} -- "$cur"))
    else
      COMPREPLY=($(compgen -W ${words(spec.commands.map((c) => c.name))} -- "$cur"))
    fi
    return
  fi
  case "$cmd" in
${commandCases.join('\n')}
    *) return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [ "$files" = 1 ]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [ -n "$values" ]; then
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  fi
}
complete -o filenames -F ${fn} ${spec.program}
`;
}

/** zsh runs the bash function through its bash-completion layer, so both shells complete the same words. */
export function zshCompletion(spec: CompletionSpec): string {
  return `# ${spec.program} completion for zsh. Load it with:  source <(${spec.program} completion zsh)
autoload -U +X compinit && { (( \${+_comps} )) || compinit; }
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(spec).split('\n').slice(1).join('\n')}`;
}

export function completionScript(shell: CompletionShell, program: Command): string {
  const spec = completionSpec(program);
  return shell === 'bash' ? bashCompletion(spec) : zshCompletion(spec);
}
