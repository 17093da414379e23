/** `cnm service ...`: named services on a network, balanced over the sandboxes that join them. */
import { keyValueMap, UsageError, type FlagSpec } from './args.js';
import type { ApiClient } from './client.js';
import { dispatch, type Io, type Subcommand } from './command.js';
import { forEachRef, inspectRefs, formatList, naturalCompare, shortId, type ListFormat } from './format.js';

/** The parts of the cnm service JSON the CLI reads. */
export interface ServiceJson {
  Id: string;
  Name: string;
  Network: { Id: string; Name: string };
  Mode: string;
  VirtualIP: string;
  /** Absent from daemons before IPv6 VIPs. */
  VirtualIPv6?: string;
  Ports: string[];
  Backends: Array<{ SandboxName: string; IPv4Address: string }>;
}

export type ServiceRow = Record<'ID' | 'Name' | 'Mode' | 'Network' | 'VIP' | 'Ports' | 'Backends', string>;

export const SERVICE_LIST_FORMAT: ListFormat<ServiceRow> = {
  defaultTable: '{{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Network}}\t{{.VIP}}\t{{.Ports}}\t{{.Backends}}',
  headers: { ID: 'SERVICE ID', Name: 'NAME', Mode: 'MODE', Network: 'NETWORK', VIP: 'VIP', Ports: 'PORTS', Backends: 'BACKENDS' },
  quietField: 'ID',
};

export function serviceRow(s: ServiceJson, noTrunc: boolean): ServiceRow {
  return {
    ID: shortId(s.Id, noTrunc),
    Name: s.Name,
    Mode: s.Mode,
    Network: s.Network.Name,
    VIP: [s.VirtualIP, s.VirtualIPv6 ?? ''].filter((v) => v !== '').join(', '),
    Ports: s.Ports.length > 0 ? s.Ports.join(',') : s.Mode === 'vip' ? 'all' : '',
    Backends: String(s.Backends.length),
  };
}

const CREATE_FLAGS: FlagSpec[] = [
  { long: 'network', kind: 'string', description: 'Network the service lives on (required)' },
  { long: 'mode', kind: 'string', description: 'vip (a virtual IP balanced by nftables, default) or dnsrr (DNS round robin)' },
  { long: 'port', short: 'p', kind: 'list', description: 'Balanced port, PORT[/tcp|/udp] (repeatable; default: every port)' },
  { long: 'label', short: 'l', kind: 'list', description: 'Set metadata on the service' },
];

function commands(api: ApiClient): Subcommand[] {
  const ref = (r: string) => encodeURIComponent(r);
  return [
    {
      name: 'create',
      usage: '[OPTIONS] NAME',
      summary: 'Create a service on a network and print its ID',
      minArgs: 1,
      maxArgs: 1,
      flags: CREATE_FLAGS,
      run: async (a, io) => {
        const network = a.string('network');
        if (!network) throw new UsageError('required flag "--network" not set');
        const res = await api.post<{ Id: string }>('/cnm/v1/services', {
          Name: a.positionals[0],
          Network: network,
          Mode: a.string('mode'),
          Ports: a.list('port'),
          Labels: keyValueMap(a.list('label')),
        });
        io.out(`${res.Id}\n`);
        return 0;
      },
    },
    {
      name: 'inspect',
      usage: '[OPTIONS] SERVICE [SERVICE...]',
      summary: 'Display detailed information on one or more services',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [{ long: 'format', short: 'f', kind: 'string', description: 'Format output using a custom template' }],
      run: (a, io) => inspectRefs(a.positionals, io, a.string('format'), (r) => api.get(`/cnm/v1/services/${ref(r)}`)),
    },
    {
      name: 'ls',
      aliases: ['list'],
      usage: '[OPTIONS]',
      summary: 'List services',
      minArgs: 0,
      maxArgs: 0,
      flags: [
        { long: 'format', kind: 'string', description: 'Format output using a custom template: table, json or a Go-style template' },
        { long: 'no-trunc', kind: 'bool', description: 'Do not truncate the output' },
        { long: 'quiet', short: 'q', kind: 'bool', description: 'Only display service IDs' },
      ],
      run: async (a, io) => {
        const all = await api.get<ServiceJson[]>('/cnm/v1/services');
        all.sort((x, y) => naturalCompare(x.Name, y.Name));
        io.out(formatList(all.map((s) => serviceRow(s, a.bool('no-trunc'))), SERVICE_LIST_FORMAT, a.string('format'), a.bool('quiet')));
        return 0;
      },
    },
    {
      name: 'rm',
      aliases: ['remove'],
      usage: 'SERVICE [SERVICE...]',
      summary: 'Remove one or more services (their backends stay connected)',
      minArgs: 1,
      maxArgs: Infinity,
      flags: [],
      run: async (a, io) => {
        const failed = await forEachRef(a.positionals, io.err, async (r) => {
          await api.delete(`/cnm/v1/services/${ref(r)}`);
          io.out(`${r}\n`);
        });
        return failed ? 1 : 0;
      },
    },
  ];
}

export async function serviceCommand(api: ApiClient, argv: string[], io: Io): Promise<number> {
  return dispatch('cnm service', 'Manage services (load balancing over sandboxes)', commands(api), argv, io);
}
