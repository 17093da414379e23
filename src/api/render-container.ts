/**
 * Sandboxes rendered where Docker shows containers (GET /containers/json, /containers/{id}/json) so
 * `docker ps` and `docker inspect` list them. A sandbox is a network stack without a process: it is
 * always "running" and has no image or command.
 */
import type { SandboxDetail } from '../controller/types.js';
import { InvalidParameterError } from '../errors.js';
import { endpointAddresses, renderPortBindings, renderPortMap, type SandboxFiles } from './render-sandbox.js';
import type { FilterArgs } from './filters.js';
import { humanDuration } from './human-duration.js';

/** What `docker ps` shows in the IMAGE column for a sandbox. */
export const SANDBOX_IMAGE = 'cnm-sandbox';

type EndpointSettings = Record<string, unknown>;

function endpointSettings(detail: SandboxDetail): Record<string, EndpointSettings> {
  const networks: Record<string, EndpointSettings> = {};
  for (const { endpoint, network } of detail.endpoints) {
    // The gateway network's endpoint is the daemon's, not the container's: Docker's inspect leaves
    // docker_gwbridge out of NetworkSettings.Networks (cnm's own sandbox inspect shows it).
    if (endpoint.outboundGateway) continue;
    const a = endpointAddresses(endpoint, network);
    const ipamConfig: Record<string, string> = {};
    if (endpoint.staticIpv4 && a.ipAddress) ipamConfig.IPv4Address = a.ipAddress;
    if (endpoint.staticIpv6 && a.ipv6Address) ipamConfig.IPv6Address = a.ipv6Address;
    networks[network.name] = {
      IPAMConfig: Object.keys(ipamConfig).length > 0 ? ipamConfig : null,
      Links: null,
      Aliases: endpoint.aliases.length > 0 ? [...endpoint.aliases] : null,
      MacAddress: endpoint.macAddress,
      DriverOpts: Object.keys(endpoint.driverOpts).length > 0 ? { ...endpoint.driverOpts } : null,
      GwPriority: endpoint.gwPriority,
      NetworkID: network.id,
      EndpointID: endpoint.id,
      Gateway: a.gateway,
      IPAddress: a.ipAddress,
      IPPrefixLen: a.ipPrefixLen,
      IPv6Gateway: a.ipv6Gateway,
      GlobalIPv6Address: a.ipv6Address,
      GlobalIPv6PrefixLen: a.ipv6PrefixLen,
      // Docker has no DNS names on the default bridge (no embedded DNS there).
      DNSNames: network.name === 'bridge' ? null : [detail.sandbox.name, ...endpoint.aliases, detail.sandbox.id.slice(0, 12)],
    };
  }
  return networks;
}

function networkMode(detail: SandboxDetail): string {
  if (detail.sandbox.hostNetwork) return 'host';
  return detail.endpoints[0]?.network.name ?? 'none';
}

function createdMs(created: string): number {
  const ms = Date.parse(created);
  return Number.isNaN(ms) ? Date.now() : ms;
}

/** container.Summary (GET /containers/json). */
export function renderContainerSummary(detail: SandboxDetail, nowMs = Date.now()): Record<string, unknown> {
  const { sandbox } = detail;
  return {
    Id: sandbox.id,
    Names: [`/${sandbox.name}`],
    Image: SANDBOX_IMAGE,
    ImageID: '',
    Command: '',
    Created: Math.floor(createdMs(sandbox.created) / 1000),
    // container.Port: what `docker ps` prints as 0.0.0.0:8080->80/tcp.
    Ports: (sandbox.ports ?? []).map((p) => ({ IP: p.hostIp, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol })),
    Labels: { ...sandbox.labels },
    State: 'running',
    Status: `Up ${humanDuration(nowMs - createdMs(sandbox.created))}`,
    HostConfig: { NetworkMode: networkMode(detail) },
    NetworkSettings: { Networks: endpointSettings(detail) },
    Mounts: [],
  };
}

/** container.InspectResponse (GET /containers/{id}/json), with the fields a sandbox can fill. */
export function renderContainerInspect(detail: SandboxDetail, files: SandboxFiles, daemonPid: number): Record<string, unknown> {
  const { sandbox } = detail;
  const networks = endpointSettings(detail);
  // Docker mirrors the default bridge's endpoint in the top-level (deprecated) fields.
  const bridge = (networks.bridge ?? {}) as Record<string, unknown>;
  return {
    Id: sandbox.id,
    Created: sandbox.created,
    Path: '',
    Args: [],
    State: {
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      // The daemon holds the namespace; there is no process of the sandbox's own.
      Pid: daemonPid,
      ExitCode: 0,
      Error: '',
      StartedAt: sandbox.created,
      FinishedAt: '0001-01-01T00:00:00Z',
    },
    Image: '',
    ResolvConfPath: files.resolvConf,
    HostnamePath: files.hostname,
    HostsPath: files.hosts,
    LogPath: '',
    Name: `/${sandbox.name}`,
    RestartCount: 0,
    Driver: '',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      NetworkMode: networkMode(detail),
      Dns: [...sandbox.dns.servers],
      DnsOptions: [...sandbox.dns.options],
      DnsSearch: [...sandbox.dns.search],
      PortBindings: renderPortBindings(sandbox),
    },
    GraphDriver: { Data: null, Name: '' },
    Mounts: [],
    Config: {
      Hostname: sandbox.hostname,
      Domainname: '',
      User: '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: null,
      Cmd: null,
      Image: SANDBOX_IMAGE,
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      OnBuild: null,
      Labels: { ...sandbox.labels },
    },
    NetworkSettings: {
      Bridge: '',
      SandboxID: sandbox.id,
      SandboxKey: files.netnsPath || sandbox.netnsPath,
      Ports: renderPortMap(sandbox),
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: bridge.EndpointID ?? '',
      Gateway: bridge.Gateway ?? '',
      GlobalIPv6Address: bridge.GlobalIPv6Address ?? '',
      GlobalIPv6PrefixLen: bridge.GlobalIPv6PrefixLen ?? 0,
      IPAddress: bridge.IPAddress ?? '',
      IPPrefixLen: bridge.IPPrefixLen ?? 0,
      IPv6Gateway: bridge.IPv6Gateway ?? '',
      MacAddress: bridge.MacAddress ?? '',
      Networks: networks,
    },
  };
}

const CONTAINER_FILTERS = ['id', 'name', 'label', 'network', 'status'];
const DOCKER_ONLY_FILTERS = ['ancestor', 'before', 'exited', 'expose', 'health', 'isolation', 'is-task', 'publish', 'since', 'volume'];

/** The subset of `docker ps` filters that mean something for sandboxes. */
export function containerListFilter(args: FilterArgs): (detail: SandboxDetail) => boolean {
  for (const key of args.keys()) {
    if (DOCKER_ONLY_FILTERS.includes(key)) {
      throw new InvalidParameterError(`filter '${key}' is not supported for cnm sandboxes`);
    }
  }
  args.validate(CONTAINER_FILTERS);
  return ({ sandbox, endpoints }) => {
    // Docker (daemon/list.go): both are patterns searched anywhere; a container's name is "/NAME".
    if (args.contains('id') && !args.match('id', sandbox.id)) return false;
    if (args.contains('name') && !args.match('name', `/${sandbox.name}`) && !args.match('name', sandbox.name)) return false;
    if (!args.matchKVList('label', sandbox.labels)) return false;
    if (!args.exactMatch('status', 'running')) return false;
    if (args.contains('network')) {
      const onNetwork = endpoints.some(
        ({ network }) => args.exactMatch('network', network.name) || args.fuzzyMatch('network', network.id),
      );
      if (!onNetwork) return false;
    }
    return true;
  };
}
