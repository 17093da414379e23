/** The `cnm` command line: talks to the daemon over the API (except `cnm daemon`, which is the daemon). */
import { UsageError } from './args.js';
import { ApiClient, ConnectionError, DaemonError, resolveSocketPath } from './client.js';
import { networkCommand, type Io } from './network.js';
import { execCommand, sandboxCommand } from './sandbox.js';

const USAGE = `Usage: cnm [--host unix:///path] COMMAND

Commands:
  daemon      Run the cnm daemon
  network     Manage networks (create, ls, inspect, rm, prune, connect, disconnect)
  sandbox     Manage sandboxes (create, ls, inspect, rm)
  exec        Run a command in a sandbox: cnm exec SANDBOX -- CMD [ARG...]
  version     Show the client and daemon versions

The daemon socket comes from --host, CNM_HOST, or /run/cnm/cnm.sock.
`;

const io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export async function main(argv: string[]): Promise<number> {
  let rest = argv;
  let host: string | undefined;
  while (rest[0] === '--host' || rest[0] === '-H' || rest[0]?.startsWith('--host=')) {
    if (rest[0]!.startsWith('--host=')) {
      host = rest[0]!.slice('--host='.length);
      rest = rest.slice(1);
    } else {
      host = rest[1];
      rest = rest.slice(2);
    }
  }
  const [command, ...args] = rest;
  try {
    if (command === 'daemon') {
      const daemonModule = '../daemon/main.js';
      await ((await import(daemonModule)) as { runDaemon(argv: string[]): Promise<void> }).runDaemon(args);
      return 0;
    }
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      io.out(USAGE);
      return command ? 0 : 1;
    }
    const api = new ApiClient(resolveSocketPath(host, process.env));
    switch (command) {
      case 'network':
        return await networkCommand(api, args, io);
      case 'sandbox':
        return await sandboxCommand(api, args, io);
      case 'exec':
        return await execCommand(api, args);
      case 'version': {
        const v = await api.get<{ Version: string; ApiVersion: string }>('/version');
        io.out(`Client: cnm ${process.env.npm_package_version ?? '0.1.0'}\nServer: cnm ${v.Version} (API ${v.ApiVersion})\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof DaemonError) {
      io.err(`Error response from daemon: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      io.err(`${err.message}\n`);
      return 125;
    }
    if (err instanceof ConnectionError) {
      io.err(`${err.message}\n`);
      return 1;
    }
    io.err(`Error: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // The daemon keeps running on its own; everything else exits with the command's status.
    if (process.argv[2] !== 'daemon') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  },
);
