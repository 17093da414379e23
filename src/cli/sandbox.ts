/** `cnm sandbox ...` and `cnm exec`: sandboxes stand where Docker has containers. */
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { UsageError, keyValueMap, parseArgs } from './args.js';
import type { ApiClient } from './client.js';
import { forEachRef, renderTable, shortId } from './format.js';
import type { Io } from './network.js';

interface SandboxJson {
  Id: string;
  Name: string;
  NetnsPath: string;
  HostNetwork: boolean;
  ResolvConfPath: string;
  HostsPath: string;
  HostnamePath: string;
  Hostname: string;
  DaemonPid: number;
  Networks: Record<string, { IPAddress: string; IPPrefixLen: number; IPv6Address: string }>;
}

export async function sandboxCommand(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create':
      return create(api, rest, io);
    case 'ls':
    case 'list':
      return list(api, rest, io);
    case 'inspect':
      return inspect(api, rest, io);
    case 'rm':
    case 'remove':
      return remove(api, rest, io);
    default:
      throw new UsageError('Usage: cnm sandbox COMMAND (create, ls, inspect, rm)');
  }
}

async function create(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [
    { long: 'network', kind: 'list', description: 'Connect to a network (repeatable; the first becomes eth0)' },
    { long: 'ip', kind: 'string', description: 'IPv4 address on the first network' },
    { long: 'ip6', kind: 'string', description: 'IPv6 address on the first network' },
    { long: 'alias', kind: 'list', description: 'Network-scoped alias on the first network' },
    { long: 'mac-address', kind: 'string', description: 'MAC address on the first network' },
    { long: 'hostname', kind: 'string', description: 'Sandbox host name' },
    { long: 'netns', kind: 'string', description: 'Adopt an existing network namespace (path)' },
    { long: 'dns', kind: 'list', description: 'Custom DNS servers' },
    { long: 'dns-search', kind: 'list', description: 'Custom DNS search domains' },
    { long: 'dns-option', kind: 'list', description: 'DNS options' },
    { long: 'label', kind: 'list', description: 'Set metadata' },
  ]);
  if (a.positionals.length > 1) throw new UsageError('"cnm sandbox create" takes at most 1 argument (the name)');
  const nets = a.list('network');
  const networks = (nets.length > 0 ? nets : ['bridge']).map((network, i) =>
    i === 0
      ? { Network: network, IPv4Address: a.string('ip'), IPv6Address: a.string('ip6'), Aliases: a.list('alias'), MacAddress: a.string('mac-address') }
      : { Network: network },
  );
  const res = await api.post<{ Id: string }>('/cnm/v1/sandboxes', {
    Name: a.positionals[0],
    Hostname: a.string('hostname'),
    Networks: networks,
    NetnsPath: a.string('netns'),
    Labels: keyValueMap(a.list('label')),
    Dns: a.list('dns'),
    DnsSearch: a.list('dns-search'),
    DnsOptions: a.list('dns-option'),
  });
  io.out(`${res.Id}\n`);
  return 0;
}

async function list(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display IDs' },
    { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
    { long: 'format', kind: 'string', description: 'table (default) or json' },
  ]);
  const all = await api.get<SandboxJson[]>('/cnm/v1/sandboxes');
  all.sort((x, y) => x.Name.localeCompare(y.Name));
  const noTrunc = a.bool('no-trunc');
  if (a.bool('quiet')) io.out(all.map((s) => `${shortId(s.Id, noTrunc)}\n`).join(''));
  else if (a.string('format') === 'json') io.out(all.map((s) => `${JSON.stringify(s)}\n`).join(''));
  else {
    const rows = all.map((s) => [
      shortId(s.Id, noTrunc),
      s.Name,
      Object.keys(s.Networks).join(','),
      Object.entries(s.Networks)
        .map(([, e]) => e.IPAddress || e.IPv6Address)
        .filter(Boolean)
        .join(','),
    ]);
    io.out(renderTable(['SANDBOX ID', 'NAME', 'NETWORKS', 'ADDRESSES'], rows));
  }
  return 0;
}

async function inspect(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, []);
  if (a.positionals.length === 0) throw new UsageError('"cnm sandbox inspect" requires at least 1 argument');
  const found: unknown[] = [];
  const failed = await forEachRef(a.positionals, io.err, async (ref) => {
    found.push(await api.get(`/cnm/v1/sandboxes/${encodeURIComponent(ref)}`));
  });
  io.out(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}

async function remove(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [{ long: 'force', short: 'f', kind: 'bool', description: 'Remove even with processes running inside' }]);
  if (a.positionals.length === 0) throw new UsageError('"cnm sandbox rm" requires at least 1 argument');
  const failed = await forEachRef(a.positionals, io.err, async (ref) => {
    await api.delete(`/cnm/v1/sandboxes/${encodeURIComponent(ref)}`, { force: a.bool('force') ? '1' : undefined });
    io.out(`${ref}\n`);
  });
  return failed ? 1 : 0;
}

/**
 * `cnm exec SANDBOX -- CMD...`: CMD runs in the sandbox's network namespace with its resolv.conf and
 * hosts bound over /etc in a private mount namespace (as `ip netns exec` does). When the daemon lives in
 * another mount namespace, the namespace pins are only visible there, so enter it first.
 */
export async function execCommand(api: ApiClient, argv: string[]): Promise<number> {
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  const [ref, ...restRaw] = args;
  const cmd = restRaw[0] === '--' ? restRaw.slice(1) : restRaw;
  if (!ref || cmd.length === 0) throw new UsageError('Usage: cnm exec SANDBOX -- COMMAND [ARG...]');
  const sb = await api.get<SandboxJson>(`/cnm/v1/sandboxes/${encodeURIComponent(ref)}`);
  const script = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';
  let full = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', sb.ResolvConfPath, sb.HostsPath, ...cmd];
  if (!sb.HostNetwork) full = ['nsenter', `--net=${sb.NetnsPath}`, '--', ...full];
  if (otherMountNamespace(sb.DaemonPid)) full = ['nsenter', '-t', String(sb.DaemonPid), '-m', '--', ...full];
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
}

function otherMountNamespace(pid: number): boolean {
  try {
    return readlinkSync('/proc/self/ns/mnt') !== readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return false;
  }
}
