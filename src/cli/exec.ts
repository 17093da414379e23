/**
 * `cnm exec SANDBOX -- CMD...`: run CMD in the sandbox's network namespace with the sandbox's
 * resolv.conf and hosts bound over /etc in a private mount namespace (what `ip netns exec` does with
 * /etc/netns/NAME), passing stdio through and returning CMD's exit status.
 */
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { UsageError } from './args.js';
import type { ApiClient } from './client.js';
import type { Subcommand } from './command.js';
import type { SandboxJson } from './sandbox.js';

/** Binds the files that exist for this sandbox, then becomes CMD. */
const BIND_AND_EXEC =
  'set -e; if [ -n "$1" ]; then mount --bind "$1" /etc/resolv.conf; fi; ' +
  'if [ -n "$2" ]; then mount --bind "$2" /etc/hosts; fi; shift 2; exec "$@"';

export type ExecTarget = Pick<SandboxJson, 'NetnsPath' | 'HostNetwork' | 'ResolvConfPath' | 'HostsPath' | 'DaemonPid'>;

/**
 * The full command line. When the daemon lives in another mount namespace, the namespace file (a bind
 * mount under the daemon's exec root) is only visible there, so that namespace is entered first and
 * the network namespace path is opened from inside it.
 */
export function execArgv(sb: ExecTarget, cmd: string[], enterDaemonMountNs: boolean): string[] {
  let argv = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', BIND_AND_EXEC, 'sh', sb.ResolvConfPath ?? '', sb.HostsPath ?? '', ...cmd];
  if (!sb.HostNetwork) argv = ['nsenter', `--net=${sb.NetnsPath}`, '--', ...argv];
  if (enterDaemonMountNs) argv = ['nsenter', '-t', String(sb.DaemonPid), '-m', '--', ...argv];
  return argv;
}

export function inOtherMountNamespace(pid: number): boolean {
  try {
    return readlinkSync('/proc/self/ns/mnt') !== readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    // The daemon's /proc entry is not visible (other PID namespace): nothing we could enter anyway.
    return false;
  }
}

/** Run argv with our stdio; resolve with its exit status (128+N when killed by signal N, as shells report). */
export function runInherited(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal's process group; we stay to report its status.
    const ignore = () => {};
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    const cleanup = () => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
    };
    child.on('error', (err) => {
      cleanup();
      reject(err);
    });
    child.on('close', (code, signal) => {
      cleanup();
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}

export function execSubcommand(api: ApiClient): Subcommand {
  return {
    name: 'exec',
    usage: 'SANDBOX [--] COMMAND [ARG...]',
    summary: "Run a command in a sandbox's network namespace (with its resolv.conf and hosts)",
    minArgs: 2,
    maxArgs: Infinity,
    interspersed: false,
    flags: [],
    run: async (a) => {
      const [ref, ...rest] = a.positionals as [string, ...string[]];
      const cmd = rest[0] === '--' ? rest.slice(1) : rest;
      if (cmd.length === 0) throw new UsageError('"cnm exec" requires a command to run');
      const sb = await api.get<SandboxJson>(`/cnm/v1/sandboxes/${encodeURIComponent(ref)}`);
      return runInherited(execArgv(sb, cmd, inOtherMountNamespace(sb.DaemonPid)));
    },
  };
}
