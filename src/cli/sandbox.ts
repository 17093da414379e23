/** `cnm sandbox ...`: sandboxes stand where Docker has containers (create / ls / inspect / rm). */
import { humanDuration } from '../api/human-duration.js';
import { UsageError, keyValueMap, parseIntFlag, type FlagSpec, type ParsedArgs } from './args.js';
import type { ApiClient } from './client.js';
import { dispatch, type Io, type Subcommand } from './command.js';
import { PortSpecError, portBindingsOf } from '../util/port-spec.js';
import { forEachRef, inspectRefs, formatList, goTimeString, naturalCompare, shortId, type ListFormat } from './format.js';

/** The parts of the cnm sandbox JSON the CLI reads. */
export interface SandboxJson {
  Id: string;
  Name: string;
  Hostname: string;
  Created: string;
  NetnsPath: string;
  HostNetwork: boolean;
  ResolvConfPath: string;
  HostsPath: string;
  HostnamePath: string;
  DaemonPid: number;
  Networks: Record<string, { IPAddress: string; IPPrefixLen: number; IPv6Address: string }>;
  /** Docker's PortMap ("80/tcp" → [{HostIp, HostPort}]); absent from daemons before port publishing. */
  Ports?: Record<string, Array<{ HostIp: string; HostPort: string }>>;
}

const CREATE_FLAGS: FlagSpec[] = [
  {
    long: 'network',
    kind: 'list',
    description: 'Connect to a network (repeatable; the first becomes eth0). Also "name=N,ip=A,ip6=A,alias=X,driver-opt=k=v,gw-priority=P,mac-address=M"',
  },
  { long: 'ip', kind: 'string', description: 'IPv4 address on the first network' },
  { long: 'ip6', kind: 'string', description: 'IPv6 address on the first network' },
  { long: 'alias', kind: 'list', description: 'Network-scoped alias on the first network' },
  { long: 'mac-address', kind: 'string', description: 'MAC address on the first network' },
  { long: 'service', kind: 'list', description: 'Join a service on the first network as a backend (repeatable)' },
  { long: 'hostname', kind: 'string', description: 'Sandbox host name' },
  { long: 'netns', kind: 'string', description: 'Adopt an existing network namespace (a bind-mounted file or /proc/PID/ns/net)' },
  { long: 'dns', kind: 'list', description: 'Set custom DNS servers' },
  { long: 'dns-search', kind: 'list', description: 'Set custom DNS search domains' },
  { long: 'dns-option', kind: 'list', description: 'Set DNS options' },
  { long: 'label', short: 'l', kind: 'list', description: 'Set metadata on the sandbox' },
  {
    long: 'publish',
    short: 'p',
    kind: 'list',
    description: 'Publish a port: [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp|sctp] (repeatable)',
  },
];

type NetworkEntry = Record<string, unknown> & { Network: string };

/** Docker's advanced --network syntax "name=N,ip=...,alias=..."; a plain value is a network name. */
export function parseNetworkFlag(value: string): NetworkEntry {
  if (!value.startsWith('name=')) return { Network: value };
  const entry: NetworkEntry = { Network: '' };
  const aliases: string[] = [];
  const services: string[] = [];
  const opts: Record<string, string> = {};
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new UsageError(`invalid --network field "${part}": expected key=value`);
    const key = part.slice(0, eq);
    const v = part.slice(eq + 1);
    switch (key) {
      case 'name':
        entry.Network = v;
        break;
      case 'ip':
        entry.IPv4Address = v;
        break;
      case 'ip6':
        entry.IPv6Address = v;
        break;
      case 'alias':
        aliases.push(v);
        break;
      case 'service':
        services.push(v);
        break;
      case 'mac-address':
        entry.MacAddress = v;
        break;
      case 'gw-priority':
        entry.GwPriority = parseIntFlag(v, '--network gw-priority');
        break;
      case 'driver-opt':
        Object.assign(opts, keyValueMap([v]));
        break;
      default:
        throw new UsageError(`invalid --network field "${key}"`);
    }
  }
  if (aliases.length > 0) entry.Aliases = aliases;
  if (services.length > 0) entry.Services = services;
  if (Object.keys(opts).length > 0) entry.DriverOpts = opts;
  return entry;
}

/** The body of POST /cnm/v1/sandboxes for `sandbox create`'s flags (pure; exported for tests). */
export function createSandboxBody(a: ParsedArgs): Record<string, unknown> {
  const nets = a.list('network').map(parseNetworkFlag);
  const firstFlags = {
    IPv4Address: a.string('ip'),
    IPv6Address: a.string('ip6'),
    Aliases: a.list('alias').length > 0 ? a.list('alias') : undefined,
    MacAddress: a.string('mac-address'),
    Services: a.list('service').length > 0 ? a.list('service') : undefined,
  };
  const hasFirstFlags = Object.values(firstFlags).some((v) => v !== undefined);
  // Without --network the daemon picks the default bridge; endpoint flags then need it spelt out.
  if (nets.length === 0 && hasFirstFlags) nets.push({ Network: 'bridge' });
  if (nets.length > 0 && hasFirstFlags) {
    const first = nets[0]!;
    for (const [k, v] of Object.entries(firstFlags)) if (v !== undefined && first[k] === undefined) first[k] = v;
  }
  return {
    Name: a.positionals[0],
    Hostname: a.string('hostname'),
    Networks: nets.length > 0 ? nets : undefined,
    NetnsPath: a.string('netns'),
    Labels: keyValueMap(a.list('label')),
    Dns: a.list('dns'),
    DnsSearch: a.list('dns-search'),
    DnsOptions: a.list('dns-option'),
    PortBindings: a.list('publish').length > 0 ? publishBindings(a.list('publish')) : undefined,
  };
}

function publishBindings(specs: string[]): ReturnType<typeof portBindingsOf> {
  try {
    return portBindingsOf(specs);
  } catch (err) {
    if (err instanceof PortSpecError) throw new UsageError(`invalid argument for -p, --publish: ${err.message}`);
    throw err;
  }
}

/**
 * `docker ps`'s PORTS text: "0.0.0.0:8080->80/tcp"; as Docker does, runs of consecutive ports published
 * on the same port numbers fold into one range, moved ports are listed one by one.
 */
export function portsText(ports: SandboxJson['Ports']): string {
  const flat = Object.entries(ports ?? {}).flatMap(([key, list]) => {
    const [port, proto] = key.split('/');
    return list.map((b) => ({ ip: b.HostIp, host: Number(b.HostPort), container: Number(port), proto: proto ?? 'tcp' }));
  });
  // IPv4 addresses before IPv6 ones (0.0.0.0:8080 then [::]:8080, as docker ps prints them).
  const ipKey = (ip: string) => `${ip.includes(':') ? 1 : 0} ${ip}`;
  flat.sort((a, b) => a.proto.localeCompare(b.proto) || (ipKey(a.ip) < ipKey(b.ip) ? -1 : ipKey(a.ip) > ipKey(b.ip) ? 1 : 0) || a.container - b.container);
  const out: string[] = [];
  for (let i = 0; i < flat.length; ) {
    const first = flat[i]!;
    let j = i + 1;
    while (
      j < flat.length &&
      first.host === first.container &&
      flat[j]!.host === flat[j]!.container &&
      flat[j]!.proto === first.proto &&
      flat[j]!.ip === first.ip &&
      flat[j]!.container === flat[j - 1]!.container + 1 &&
      flat[j]!.host === flat[j - 1]!.host + 1
    ) j++;
    const last = flat[j - 1]!;
    const range = (a: number, b: number) => (a === b ? `${a}` : `${a}-${b}`);
    out.push(`${first.ip.includes(':') ? `[${first.ip}]` : first.ip}:${range(first.host, last.host)}->${range(first.container, last.container)}/${first.proto}`);
    i = j;
  }
  return out.join(', ');
}

export type SandboxRow = Record<'ID' | 'Name' | 'Hostname' | 'Networks' | 'IPAddresses' | 'Ports' | 'CreatedAt' | 'RunningFor', string>;

export const SANDBOX_LIST_FORMAT: ListFormat<SandboxRow> = {
  defaultTable: '{{.ID}}\t{{.Name}}\t{{.Networks}}\t{{.IPAddresses}}\t{{.Ports}}\t{{.RunningFor}}',
  headers: {
    ID: 'SANDBOX ID',
    Name: 'NAME',
    Hostname: 'HOSTNAME',
    Networks: 'NETWORKS',
    IPAddresses: 'IP ADDRESSES',
    Ports: 'PORTS',
    CreatedAt: 'CREATED AT',
    RunningFor: 'CREATED',
  },
  quietField: 'ID',
};

export function sandboxRow(s: SandboxJson, noTrunc: boolean, nowMs = Date.now()): SandboxRow {
  const names = Object.keys(s.Networks).sort(naturalCompare);
  const addresses = names.flatMap((n) => [s.Networks[n]!.IPAddress, s.Networks[n]!.IPv6Address]).filter(Boolean);
  const created = Date.parse(s.Created);
  return {
    ID: shortId(s.Id, noTrunc),
    Name: s.Name,
    Hostname: s.Hostname,
    Networks: s.HostNetwork ? 'host' : names.join(','),
    IPAddresses: addresses.join(','),
    Ports: portsText(s.Ports),
    CreatedAt: goTimeString(s.Created),
    RunningFor: Number.isNaN(created) ? '' : `${humanDuration(nowMs - created)} ago`,
  };
}

function commands(api: ApiClient): Subcommand[] {
  const ref = (r: string) => encodeURIComponent(r);
  return [
    {
      name: 'create',
      usage: '[OPTIONS] [NAME]',
      summary: 'Create a sandbox (a network namespace with endpoints) and print its ID',
      minArgs: 0,
      maxArgs: 1,
      flags: CREATE_FLAGS,
      run: async (a, io) => {
        const res = await api.post<{ Id: string }>('/cnm/v1/sandboxes', createSandboxBody(a));
        io.out(`${res.Id}\n`);
        return 0;
      },
    },
    {
      name: 'inspect',
      usage: '[OPTIONS] SANDBOX [SANDBOX...]',
      summary: 'Display detailed information on one or more sandboxes',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [{ long: 'format', short: 'f', kind: 'string', description: 'Format output using a custom template' }],
      run: (a, io) => inspectRefs(a.positionals, io, a.string('format'), (r) => api.get(`/cnm/v1/sandboxes/${ref(r)}`)),
    },
    {
      name: 'ls',
      aliases: ['list', 'ps'],
      usage: '[OPTIONS]',
      summary: 'List sandboxes',
      minArgs: 0,
      maxArgs: 0,
      flags: [
        { long: 'format', kind: 'string', description: 'Format output using a custom template: table, json or a Go-style template' },
        { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
        { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display sandbox IDs' },
      ],
      run: async (a, io) => {
        const all = await api.get<SandboxJson[]>('/cnm/v1/sandboxes');
        all.sort((x, y) => naturalCompare(x.Name, y.Name));
        const now = Date.now();
        io.out(formatList(all.map((s) => sandboxRow(s, a.bool('no-trunc'), now)), SANDBOX_LIST_FORMAT, a.string('format'), a.bool('quiet')));
        return 0;
      },
    },
    {
      name: 'rm',
      aliases: ['remove'],
      usage: '[OPTIONS] SANDBOX [SANDBOX...]',
      summary: 'Remove one or more sandboxes (disconnecting them from their networks)',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [{ long: 'force', short: 'f', kind: 'bool', description: 'Force the removal (accepted for Docker parity)' }],
      run: async (a, io) => {
        const failed = await forEachRef(a.positionals, io.err, async (r) => {
          await api.delete(`/cnm/v1/sandboxes/${ref(r)}`, { force: a.bool('force') ? '1' : undefined });
          io.out(`${r}\n`);
        });
        return failed ? 1 : 0;
      },
    },
  ];
}

export async function sandboxCommand(api: ApiClient, argv: string[], io: Io): Promise<number> {
  return dispatch('cnm sandbox', 'Manage sandboxes', commands(api), argv, io);
}
