/** `cnm network ...`: Docker's network commands and flags over the API. */
import { UsageError, filtersJson, keyValueMap, parseArgs, type FlagSpec } from './args.js';
import type { ApiClient } from './client.js';
import { forEachRef, renderTable, shortId } from './format.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const CREATE_FLAGS: FlagSpec[] = [
  { long: 'driver', short: 'd', kind: 'string', description: 'Driver to manage the network (default "bridge")' },
  { long: 'subnet', kind: 'list', description: 'Subnet in CIDR format (repeatable)' },
  { long: 'ip-range', kind: 'list', description: 'Allocate addresses from a sub-range' },
  { long: 'gateway', kind: 'list', description: 'Gateway for the subnet' },
  { long: 'aux-address', kind: 'list', description: 'Auxiliary addresses (name=ip)' },
  { long: 'internal', kind: 'bool', description: 'Restrict external access to the network' },
  { long: 'attachable', kind: 'bool', description: 'Enable manual container attachment' },
  { long: 'ingress', kind: 'bool', description: 'Create swarm routing-mesh network' },
  { long: 'ipv6', kind: 'bool', description: 'Enable IPv6' },
  { long: 'ipv4', kind: 'bool', description: 'Enable IPv4 (default true)' },
  { long: 'label', kind: 'list', description: 'Set metadata on a network' },
  { long: 'opt', short: 'o', kind: 'list', description: 'Set driver specific options' },
  { long: 'ipam-driver', kind: 'string', description: 'IP Address Management Driver' },
  { long: 'ipam-opt', kind: 'list', description: 'Set IPAM driver specific options' },
  { long: 'scope', kind: 'string', description: "Control the network's scope" },
  { long: 'config-only', kind: 'bool', description: 'Create a configuration only network' },
  { long: 'config-from', kind: 'string', description: 'The network from which to copy the configuration' },
];

export async function networkCommand(api: ApiClient, argv: string[], io: Io): Promise<number> {
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
    case 'prune':
      return prune(api, rest, io);
    case 'connect':
      return connect(api, rest, io);
    case 'disconnect':
      return disconnect(api, rest, io);
    default:
      throw new UsageError(`Usage: cnm network COMMAND (create, ls, inspect, rm, prune, connect, disconnect)`);
  }
}

async function create(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, CREATE_FLAGS);
  if (a.positionals.length !== 1) throw new UsageError('"cnm network create" requires exactly 1 argument (the network name)');
  const subnets = a.list('subnet');
  const ranges = a.list('ip-range');
  const gateways = a.list('gateway');
  if (ranges.length > subnets.length || gateways.length > subnets.length) {
    throw new UsageError('every --ip-range and --gateway needs a --subnet, matched in order');
  }
  const aux = keyValueMap(a.list('aux-address'));
  const config = subnets.map((subnet, i) => ({
    Subnet: subnet,
    IPRange: ranges[i],
    Gateway: gateways[i],
    AuxiliaryAddresses: i === 0 && Object.keys(aux).length > 0 ? aux : undefined,
  }));
  const body = {
    Name: a.positionals[0],
    Driver: a.string('driver') ?? 'bridge',
    Scope: a.string('scope'),
    Internal: a.bool('internal'),
    Attachable: a.bool('attachable'),
    Ingress: a.bool('ingress'),
    ConfigOnly: a.bool('config-only'),
    ConfigFrom: a.has('config-from') ? { Network: a.string('config-from') } : undefined,
    EnableIPv6: a.has('ipv6') ? a.bool('ipv6') : undefined,
    EnableIPv4: a.has('ipv4') ? a.bool('ipv4') : undefined,
    IPAM: { Driver: a.string('ipam-driver') ?? 'default', Config: config, Options: keyValueMap(a.list('ipam-opt')) },
    Options: keyValueMap(a.list('opt')),
    Labels: keyValueMap(a.list('label')),
  };
  const res = await api.post<{ Id: string; Warning?: string }>('/networks/create', body);
  if (res.Warning) io.err(`${res.Warning}\n`);
  io.out(`${res.Id}\n`);
  return 0;
}

interface NetworkSummary {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
}

async function list(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [
    { long: 'filter', short: 'f', kind: 'list', description: 'Provide filter values (e.g. "driver=bridge")' },
    { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display network IDs' },
    { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
    { long: 'format', kind: 'string', description: 'table (default) or json' },
  ]);
  const nets = await api.get<NetworkSummary[]>('/networks', { filters: filtersJson(a.list('filter')) });
  nets.sort((x, y) => x.Name.localeCompare(y.Name));
  const noTrunc = a.bool('no-trunc');
  if (a.bool('quiet')) {
    io.out(nets.map((n) => `${shortId(n.Id, noTrunc)}\n`).join(''));
  } else if (a.string('format') === 'json') {
    io.out(nets.map((n) => `${JSON.stringify(n)}\n`).join(''));
  } else {
    io.out(renderTable(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], nets.map((n) => [shortId(n.Id, noTrunc), n.Name, n.Driver, n.Scope])));
  }
  return 0;
}

async function inspect(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [{ long: 'format', short: 'f', kind: 'string', description: 'json (default)' }]);
  if (a.positionals.length === 0) throw new UsageError('"cnm network inspect" requires at least 1 argument');
  const found: unknown[] = [];
  const failed = await forEachRef(a.positionals, io.err, async (ref) => {
    found.push(await api.get(`/networks/${encodeURIComponent(ref)}`));
  });
  io.out(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}

async function remove(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [{ long: 'force', short: 'f', kind: 'bool', description: 'Do not error if the network does not exist' }]);
  if (a.positionals.length === 0) throw new UsageError('"cnm network rm" requires at least 1 argument');
  const failed = await forEachRef(
    a.positionals,
    io.err,
    async (ref) => {
      await api.delete(`/networks/${encodeURIComponent(ref)}`);
      io.out(`${ref}\n`);
    },
    (err) => a.bool('force') && (err as { status?: number }).status === 404,
  );
  return failed ? 1 : 0;
}

async function prune(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [
    { long: 'force', short: 'f', kind: 'bool', description: 'Do not prompt for confirmation' },
    { long: 'filter', kind: 'list', description: 'Provide filter values (e.g. "until=<timestamp>")' },
  ]);
  if (!a.bool('force') && process.stdin.isTTY) {
    io.out('WARNING! This will remove all custom networks not used by at least one sandbox.\nUse --force to skip this prompt.\n');
    return 1;
  }
  const res = await api.post<{ NetworksDeleted: string[] | null }>('/networks/prune', undefined, { filters: filtersJson(a.list('filter')) });
  const deleted = res.NetworksDeleted ?? [];
  if (deleted.length > 0) io.out(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}`);
  return 0;
}

async function connect(api: ApiClient, argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, [
    { long: 'ip', kind: 'string', description: 'IPv4 address' },
    { long: 'ip6', kind: 'string', description: 'IPv6 address' },
    { long: 'alias', kind: 'list', description: 'Add network-scoped alias' },
    { long: 'driver-opt', kind: 'list', description: 'Driver options for the endpoint' },
    { long: 'gw-priority', kind: 'string', description: 'Priority for the default gateway' },
    { long: 'mac-address', kind: 'string', description: 'MAC address' },
  ]);
  if (a.positionals.length !== 2) throw new UsageError('"cnm network connect" requires exactly 2 arguments: NETWORK SANDBOX');
  const [network, sandbox] = a.positionals as [string, string];
  const gw = a.string('gw-priority');
  if (gw !== undefined && !/^-?\d+$/.test(gw)) throw new UsageError(`invalid --gw-priority ${gw}`);
  await api.post(`/networks/${encodeURIComponent(network)}/connect`, {
    Container: sandbox,
    EndpointConfig: {
      IPAMConfig: { IPv4Address: a.string('ip'), IPv6Address: a.string('ip6') },
      Aliases: a.list('alias'),
      DriverOpts: keyValueMap(a.list('driver-opt')),
      MacAddress: a.string('mac-address'),
      GwPriority: gw === undefined ? undefined : Number(gw),
    },
  });
  void io;
  return 0;
}

async function disconnect(api: ApiClient, argv: string[], _io: Io): Promise<number> {
  const a = parseArgs(argv, [{ long: 'force', short: 'f', kind: 'bool', description: 'Force the disconnection' }]);
  if (a.positionals.length !== 2) throw new UsageError('"cnm network disconnect" requires exactly 2 arguments: NETWORK SANDBOX');
  const [network, sandbox] = a.positionals as [string, string];
  await api.post(`/networks/${encodeURIComponent(network)}/disconnect`, { Container: sandbox, Force: a.bool('force') });
  return 0;
}
