/** `cnm network ...`: the docker CLI's network commands, flags and output, over the API. */
import { isIP } from 'node:net';
import { UsageError, filtersJson, keyValueMap, parseIntFlag, type FlagSpec, type ParsedArgs } from './args.js';
import type { ApiClient } from './client.js';
import { dispatch, type Io, type Subcommand } from './command.js';
import { forEachRef, inspectRefs, formatList, goTimeString, naturalCompare, shortId, type ListFormat } from './format.js';
import { buildIpamConfig, CliError } from './ipam-flags.js';

export type { Io } from './command.js';

const CREATE_FLAGS: FlagSpec[] = [
  { long: 'driver', short: 'd', kind: 'string', description: 'Driver to manage the Network (default "bridge")' },
  { long: 'opt', short: 'o', kind: 'list', valueName: 'map', description: 'Set driver specific options' },
  { long: 'label', kind: 'list', description: 'Set metadata on a network' },
  { long: 'internal', kind: 'bool', description: 'Restrict external access to the network' },
  { long: 'ipv4', kind: 'bool', description: 'Enable or disable IPv4 address assignment (default true)' },
  { long: 'ipv6', kind: 'bool', description: 'Enable or disable IPv6 address assignment' },
  { long: 'attachable', kind: 'bool', description: 'Enable manual container attachment' },
  { long: 'ingress', kind: 'bool', description: 'Create swarm routing-mesh network' },
  { long: 'scope', kind: 'string', description: "Control the network's scope" },
  { long: 'config-only', kind: 'bool', description: 'Create a configuration only network' },
  { long: 'config-from', kind: 'string', description: 'The network from which to copy the configuration' },
  { long: 'ipam-driver', kind: 'string', description: 'IP Address Management Driver (default "default")' },
  { long: 'subnet', kind: 'csv', valueName: 'strings', description: 'Subnet in CIDR format that represents a network segment' },
  { long: 'ip-range', kind: 'csv', valueName: 'ipNetSlice', description: 'Allocate container ip from a sub-range' },
  { long: 'gateway', kind: 'csv', valueName: 'ipSlice', description: 'IPv4 or IPv6 Gateway for the master subnet' },
  { long: 'aux-address', kind: 'list', valueName: 'map', description: 'Auxiliary IPv4 or IPv6 addresses used by Network driver' },
  { long: 'ipam-opt', kind: 'list', valueName: 'map', description: 'Set IPAM driver specific options' },
];

/** The body of POST /networks/create for `network create`'s flags (pure; exported for tests). */
export function createNetworkBody(a: ParsedArgs): Record<string, unknown> {
  for (const label of a.list('label')) {
    if (label.startsWith('=') || label === '') throw new CliError(`invalid label '${label}': empty name`);
  }
  return {
    Name: a.positionals[0],
    Driver: a.string('driver') ?? 'bridge',
    Scope: a.string('scope') ?? '',
    EnableIPv4: a.has('ipv4') ? a.bool('ipv4') : undefined,
    EnableIPv6: a.has('ipv6') ? a.bool('ipv6') : undefined,
    IPAM: buildIpamConfig({
      driver: a.string('ipam-driver') ?? 'default',
      subnets: a.list('subnet'),
      ipRanges: a.list('ip-range'),
      gateways: a.list('gateway'),
      auxAddresses: keyValueMap(a.list('aux-address')),
      options: keyValueMap(a.list('ipam-opt')),
    }),
    Internal: a.bool('internal'),
    Attachable: a.bool('attachable'),
    Ingress: a.bool('ingress'),
    ConfigOnly: a.bool('config-only'),
    ConfigFrom: a.string('config-from') ? { Network: a.string('config-from') } : undefined,
    Options: keyValueMap(a.list('opt')),
    Labels: keyValueMap(a.list('label')),
  };
}

interface NetworkSummary {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Created: string;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
}

export type NetworkRow = Record<'ID' | 'Name' | 'Driver' | 'Scope' | 'IPv4' | 'IPv6' | 'Internal' | 'Labels' | 'CreatedAt', string>;

export const NETWORK_LIST_FORMAT: ListFormat<NetworkRow> = {
  defaultTable: '{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
  headers: {
    ID: 'NETWORK ID',
    Name: 'NAME',
    Driver: 'DRIVER',
    Scope: 'SCOPE',
    IPv4: 'IPV4',
    IPv6: 'IPV6',
    Internal: 'INTERNAL',
    Labels: 'LABELS',
    CreatedAt: 'CREATED AT',
  },
  quietField: 'ID',
};

/** The docker CLI's networkContext fields for one list item. */
export function networkRow(n: NetworkSummary, noTrunc: boolean): NetworkRow {
  return {
    ID: shortId(n.Id, noTrunc),
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    IPv4: String(n.EnableIPv4 ?? false),
    IPv6: String(n.EnableIPv6 ?? false),
    Internal: String(n.Internal ?? false),
    Labels: Object.entries(n.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(','),
    CreatedAt: goTimeString(n.Created),
  };
}

function ipFlag(a: ParsedArgs, name: string): string | undefined {
  const value = a.string(name);
  if (value === undefined || value === '') return undefined;
  if (isIP(value) === 0) throw new UsageError(`invalid argument "${value}" for "--${name}" flag: invalid string being converted to IP address: ${value}`);
  return value;
}

/** Docker's convertDriverOpt: "k=v" with trimmed key and value; a missing "=" or key is an error. */
function driverOpts(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const opt of values) {
    const eq = opt.indexOf('=');
    const key = (eq < 0 ? opt : opt.slice(0, eq)).trim();
    if (eq < 0 || key === '') throw new CliError('invalid key/value pair format in driver options');
    out[key] = opt.slice(eq + 1).trim();
  }
  return out;
}

/** The body of POST /networks/{id}/connect for `network connect`'s flags (pure; exported for tests). */
export function connectBody(a: ParsedArgs): Record<string, unknown> {
  const gw = a.string('gw-priority');
  const gwPriority = gw === undefined ? 0 : parseIntFlag(gw, '--gw-priority');
  const linkLocal = a.list('link-local-ip');
  return {
    Container: a.positionals[1],
    EndpointConfig: {
      IPAMConfig: {
        IPv4Address: ipFlag(a, 'ip'),
        IPv6Address: ipFlag(a, 'ip6'),
        LinkLocalIPs: linkLocal.length > 0 ? linkLocal : undefined,
      },
      Links: a.list('link'),
      Aliases: a.list('alias'),
      MacAddress: a.string('mac-address'),
      DriverOpts: driverOpts(a.list('driver-opt')),
      GwPriority: gwPriority,
      CnmServices: a.list('service').length > 0 ? a.list('service') : undefined,
    },
  };
}

const PRUNE_WARNING = `WARNING! This will remove all custom networks not used by at least one container.
Are you sure you want to continue?`;

function commands(api: ApiClient): Subcommand[] {
  const ref = (r: string) => encodeURIComponent(r);
  return [
    {
      name: 'connect',
      usage: '[OPTIONS] NETWORK SANDBOX',
      summary: 'Connect a sandbox to a network',
      minArgs: 2,
      maxArgs: 2,
      flags: [
        { long: 'ip', kind: 'string', description: 'IPv4 address (e.g., "172.30.100.104")' },
        { long: 'ip6', kind: 'string', description: 'IPv6 address (e.g., "2001:db8::33")' },
        { long: 'alias', kind: 'csv', valueName: 'strings', description: 'Add network-scoped alias for the sandbox' },
        { long: 'driver-opt', kind: 'csv', valueName: 'strings', description: 'driver options for the network' },
        { long: 'gw-priority', kind: 'string', valueName: 'int', description: 'Highest gw-priority provides the default gateway. Accepts positive and negative values.' },
        { long: 'mac-address', kind: 'string', description: 'MAC address for the endpoint (cnm extension)' },
        { long: 'link', kind: 'list', description: 'Add link to another container (accepted for compatibility)' },
        { long: 'link-local-ip', kind: 'csv', valueName: 'ipSlice', description: 'Add a link-local address for the sandbox' },
        { long: 'service', kind: 'list', description: 'Join a service on this network as a backend (repeatable; cnm extension)' },
      ],
      run: async (a) => {
        await api.post(`/networks/${ref(a.positionals[0]!)}/connect`, connectBody(a));
        return 0;
      },
    },
    {
      name: 'create',
      usage: '[OPTIONS] NETWORK',
      summary: 'Create a network',
      minArgs: 1,
      maxArgs: 1,
      flags: CREATE_FLAGS,
      run: async (a, io) => {
        const res = await api.post<{ Id: string; Warning?: string }>('/networks/create', createNetworkBody(a));
        if (res.Warning) io.err(`${res.Warning}\n`);
        io.out(`${res.Id}\n`);
        return 0;
      },
    },
    {
      name: 'disconnect',
      usage: '[OPTIONS] NETWORK SANDBOX',
      summary: 'Disconnect a sandbox from a network',
      minArgs: 2,
      maxArgs: 2,
      flags: [{ long: 'force', short: 'f', kind: 'bool', description: 'Force the sandbox to disconnect from a network' }],
      run: async (a) => {
        const [network, sandbox] = a.positionals as [string, string];
        await api.post(`/networks/${ref(network)}/disconnect`, { Container: sandbox, Force: a.bool('force') });
        return 0;
      },
    },
    {
      name: 'inspect',
      usage: '[OPTIONS] NETWORK [NETWORK...]',
      summary: 'Display detailed information on one or more networks',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [
        { long: 'format', short: 'f', kind: 'string', description: 'Format output using a custom template' },
        { long: 'verbose', short: 'v', kind: 'bool', description: 'Verbose output for diagnostics' },
      ],
      run: (a, io) =>
        inspectRefs(a.positionals, io, a.string('format'), (r) =>
          api.get(`/networks/${ref(r)}`, { verbose: a.bool('verbose') ? 'true' : undefined }),
        ),
    },
    {
      name: 'ls',
      aliases: ['list'],
      usage: '[OPTIONS]',
      summary: 'List networks',
      minArgs: 0,
      maxArgs: 0,
      flags: [
        { long: 'filter', short: 'f', kind: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "driver=bridge")' },
        { long: 'format', kind: 'string', description: 'Format output using a custom template: table, json or a Go-style template' },
        { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
        { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display network IDs' },
      ],
      run: async (a, io) => {
        const nets = await api.get<NetworkSummary[]>('/networks', { filters: filtersJson(a.list('filter')) });
        nets.sort((x, y) => naturalCompare(x.Name, y.Name));
        const rows = nets.map((n) => networkRow(n, a.bool('no-trunc')));
        io.out(formatList(rows, NETWORK_LIST_FORMAT, a.string('format'), a.bool('quiet')));
        return 0;
      },
    },
    {
      name: 'prune',
      usage: '[OPTIONS]',
      summary: 'Remove all unused networks',
      minArgs: 0,
      maxArgs: 0,
      flags: [
        { long: 'filter', kind: 'list', valueName: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
        { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
      ],
      run: async (a, io) => {
        const filters = filtersJson(a.list('filter'));
        if (!a.bool('force')) {
          const answer = io.prompt ? await io.prompt(`${PRUNE_WARNING} [y/N] `) : '';
          // Docker treats a declined prompt as a cancellation: nothing printed, exit 0.
          if (!/^y(es)?$/i.test(answer.trim())) return 0;
        }
        const res = await api.post<{ NetworksDeleted: string[] | null }>('/networks/prune', undefined, { filters });
        const deleted = res.NetworksDeleted ?? [];
        if (deleted.length > 0) io.out(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}\n`);
        return 0;
      },
    },
    {
      name: 'rm',
      aliases: ['remove'],
      usage: 'NETWORK [NETWORK...]',
      summary: 'Remove one or more networks',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [{ long: 'force', short: 'f', kind: 'bool', description: 'Do not error if the network does not exist' }],
      run: async (a, io) => {
        const failed = await forEachRef(
          a.positionals,
          io.err,
          async (r) => {
            await api.delete(`/networks/${ref(r)}`);
            io.out(`${r}\n`);
          },
          (err) => a.bool('force') && (err as { status?: number }).status === 404,
        );
        return failed ? 1 : 0;
      },
    },
  ];
}

export async function networkCommand(api: ApiClient, argv: string[], io: Io): Promise<number> {
  return dispatch('cnm network', 'Manage networks', commands(api), argv, io);
}
