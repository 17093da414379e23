/**
 * The `cnm` command line: talks to the daemon over the API (except `cnm daemon`, which is the daemon).
 *
 * Exit status: 0 on success; 1 when the daemon refuses or cannot be reached (the message is printed
 * as "Error response from daemon: ..."); 125 for usage errors (unknown command or flag, wrong number
 * of arguments), as the docker CLI does for flag errors; `cnm exec` returns the command's own status.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { parseArgs, UsageError, type FlagSpec } from './args.js';
import { ApiClient, ConnectionError, DaemonError, resolveSocketPath } from './client.js';
import { runSubcommand, type Io, type Subcommand } from './command.js';
import { execSubcommand } from './exec.js';
import { formatInspect, FormatError } from './format.js';
import { CliError } from './ipam-flags.js';
import { networkCommand } from './network.js';
import { sandboxCommand } from './sandbox.js';
import { cniCommand } from './cni.js';
import { serviceCommand } from './service.js';

const USAGE = `Usage:  cnm [OPTIONS] COMMAND

Docker's container networking (CNM) as a daemon of its own.

Commands:
  daemon      Run the cnm daemon
  network     Manage networks (create, ls, inspect, rm, prune, connect, disconnect)
  sandbox     Manage sandboxes (create, ls, inspect, rm)
  service     Manage services: a name balanced over sandboxes (create, ls, inspect, rm)
  exec        Run a command in a sandbox: cnm exec SANDBOX -- CMD [ARG...]
  cni         The CNI plugin (install)
  version     Show the cnm version information

Global Options:
  -H, --host string   Daemon socket (unix:///path); default $CNM_HOST or unix:///run/cnm/cnm.sock
  -v, --version       Print version information and quit

Run 'cnm COMMAND --help' for more information on a command.
`;

const GLOBAL_FLAGS: FlagSpec[] = [
  { long: 'host', short: 'H', kind: 'string', description: 'Daemon socket' },
  { long: 'version', short: 'v', kind: 'bool', description: 'Print version information and quit' },
];

export function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    prompt: (question) => readAnswer(question),
  };
}

export async function main(argv: string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const global = parseArgs(argv, GLOBAL_FLAGS, { interspersed: false });
    const [command, ...args] = global.positionals;
    if (global.bool('version')) {
      io.out(`cnm version ${clientVersion()}\n`);
      return 0;
    }
    if (command === 'daemon') {
      // A computed specifier keeps the daemon (and its native modules) out of the CLI's load path.
      const daemonModule = '../daemon/main.js';
      await ((await import(daemonModule)) as { runDaemon(argv: string[]): Promise<void> }).runDaemon(args);
      return 0;
    }
    if (global.bool('help') || command === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (command === undefined) {
      io.err(USAGE);
      return 125;
    }
    if (command === 'cni') return await cniCommand(args, io);
    const api = new ApiClient(resolveSocketPath(global.string('host'), env));
    switch (command) {
      case 'network':
        return await networkCommand(api, args, io);
      case 'sandbox':
        return await sandboxCommand(api, args, io);
      case 'service':
        return await serviceCommand(api, args, io);
      case 'exec':
        return await runSubcommand('cnm exec', execSubcommand(api), args, io);
      case 'version':
        return await runSubcommand('cnm version', versionSubcommand(api), args, io);
      default:
        throw new UsageError(`cnm: '${command}' is not a cnm command.\nSee 'cnm --help'`);
    }
  } catch (err) {
    return reportError(err, io);
  }
}

function reportError(err: unknown, io: Io): number {
  if (err instanceof DaemonError) {
    io.err(`Error response from daemon: ${err.message}\n`);
    return 1;
  }
  if (err instanceof UsageError) {
    io.err(`${err.message}\n`);
    return 125;
  }
  if (err instanceof ConnectionError || err instanceof CliError || err instanceof FormatError) {
    io.err(`${err.message}\n`);
    return 1;
  }
  io.err(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}

/** The version in package.json (two levels up from src/cli, three from dist/src/cli). */
export function clientVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cnm' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

interface ServerVersion {
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
}

function versionSubcommand(api: ApiClient): Subcommand {
  return {
    name: 'version',
    usage: '[OPTIONS]',
    summary: 'Show the cnm version information',
    minArgs: 0,
    maxArgs: 0,
    flags: [{ long: 'format', short: 'f', kind: 'string', description: 'Format output using a custom template (json for JSON)' }],
    run: async (a, io) => {
      const client = {
        Version: clientVersion(),
        ApiVersion: '1.51',
        NodeVersion: process.version,
        Os: 'linux',
        Arch: GO_ARCH[process.arch] ?? process.arch,
        KernelVersion: release(),
      };
      let server: ServerVersion | undefined;
      let failure: unknown;
      try {
        server = await api.get<ServerVersion>('/version');
      } catch (err) {
        failure = err;
      }
      const format = a.string('format');
      if (format) {
        const data = { Client: client, Server: server ?? null };
        io.out(format === 'json' ? `${JSON.stringify(data)}\n` : formatInspect([data], format));
      } else {
        io.out(
          `Client:\n Version:           ${client.Version}\n API version:       ${client.ApiVersion}\n` +
            ` Node version:      ${client.NodeVersion}\n OS/Arch:           ${client.Os}/${client.Arch}\n`,
        );
        if (server) {
          io.out(
            `\nServer: cnm\n Engine:\n  Version:          ${server.Version}\n` +
              `  API version:      ${server.ApiVersion} (minimum version ${server.MinAPIVersion})\n` +
              `  Node version:     ${server.GoVersion}\n  OS/Arch:          ${server.Os}/${server.Arch}\n` +
              `  Kernel version:   ${server.KernelVersion}\n`,
          );
        }
      }
      if (failure) throw failure;
      return 0;
    },
  };
}

/** Print `question` and read one line from stdin ("" at end of input). */
function readAnswer(question: string): Promise<string> {
  process.stdout.write(question);
  return new Promise((resolve) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl >= 0) finish(buffered.slice(0, nl));
    };
    const onEnd = () => finish(buffered);
    const finish = (answer: string) => {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.pause();
      resolve(answer);
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
    process.stdin.resume();
  });
}
