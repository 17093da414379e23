/** Subcommand plumbing shared by the command groups: help, flag parsing and Docker's argument-count errors. */
import { formatFlagHelp, parseArgs, UsageError, type FlagSpec, type ParsedArgs } from './args.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Ask a question on the terminal and return the answer line ("" on end of input). */
  prompt?(question: string): Promise<string>;
}

export interface Subcommand {
  name: string;
  aliases?: string[];
  /** After the command path, e.g. "[OPTIONS] NETWORK". */
  usage: string;
  summary: string;
  flags: FlagSpec[];
  minArgs: number;
  maxArgs: number;
  /** False stops flag parsing at the first positional (`exec SANDBOX CMD -x`). */
  interspersed?: boolean;
  run(args: ParsedArgs, io: Io): Promise<number>;
}

export function commandUsage(path: string, cmd: Subcommand): string {
  const flags = cmd.flags.length > 0 ? `\n\nOptions:\n${formatFlagHelp(cmd.flags)}` : '';
  return `Usage:  ${path} ${cmd.usage}\n\n${cmd.summary}${flags}\n`;
}

export function groupUsage(group: string, summary: string, cmds: Subcommand[]): string {
  const width = Math.max(...cmds.map((c) => c.name.length)) + 4;
  const lines = cmds.map((c) => `  ${c.name.padEnd(width)}${c.summary}`);
  return `Usage:  ${group} COMMAND\n\n${summary}\n\nCommands:\n${lines.join('\n')}\n\nRun '${group} COMMAND --help' for more information on a command.\n`;
}

/** Run `argv[0]` of `cmds` under the command path `group` (e.g. "cnm network"). */
export async function dispatch(group: string, summary: string, cmds: Subcommand[], argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(groupUsage(group, summary, cmds));
    return name === undefined ? 1 : 0;
  }
  const cmd = cmds.find((c) => c.name === name || c.aliases?.includes(name));
  if (!cmd) throw new UsageError(`${group}: '${name}' is not a command.\nSee '${group} --help'.`);
  return runSubcommand(`${group} ${cmd.name}`, cmd, rest, io);
}

export async function runSubcommand(path: string, cmd: Subcommand, argv: string[], io: Io): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, cmd.flags, { interspersed: cmd.interspersed ?? true });
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${err.message}\nSee '${path} --help'.`);
    throw err;
  }
  if (args.bool('help')) {
    io.out(commandUsage(path, cmd));
    return 0;
  }
  const n = args.positionals.length;
  const problem = argCountProblem(n, cmd.minArgs, cmd.maxArgs);
  if (problem) {
    throw new UsageError(`"${path}" ${problem}.\nSee '${path} --help'.\n\nUsage:  ${path} ${cmd.usage}\n\n${cmd.summary}`);
  }
  return cmd.run(args, io);
}

function argCountProblem(n: number, min: number, max: number): string | undefined {
  const plural = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  if (min === max && n !== min) return min === 0 ? 'accepts no arguments' : `requires exactly ${plural(min)}`;
  if (n < min) return `requires at least ${plural(min)}`;
  if (n > max) return max === 0 ? 'accepts no arguments' : `requires at most ${plural(max)}`;
  return undefined;
}
