/** The cnm extension's sandbox JSON (GET /cnm/v1/sandboxes). */
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../controller/records.js';
import type { SandboxDetail } from '../controller/types.js';
import { gatewayFor, splitCidr } from './addresses.js';

/** Paths of the files bound into the sandbox (Controller.sandboxFiles). */
export interface SandboxFiles {
  netnsPath: string;
  resolvConf: string;
  hosts: string;
  hostname: string;
}

/** Addresses of one endpoint as the renderers show them. */
export interface EndpointAddresses {
  ipAddress: string;
  ipPrefixLen: number;
  gateway: string;
  ipv6Address: string;
  ipv6PrefixLen: number;
  ipv6Gateway: string;
}

export function endpointAddresses(endpoint: EndpointRecord, network: NetworkRecord): EndpointAddresses {
  const v4 = splitCidr(endpoint.ipv4Address);
  const v6 = splitCidr(endpoint.ipv6Address);
  return {
    ipAddress: v4.address,
    ipPrefixLen: v4.prefixLen,
    gateway: gatewayFor(network, endpoint.ipv4Address),
    ipv6Address: v6.address,
    ipv6PrefixLen: v6.prefixLen,
    ipv6Gateway: gatewayFor(network, endpoint.ipv6Address),
  };
}

export interface CnmSandboxNetwork {
  NetworkID: string;
  EndpointID: string;
  MacAddress: string;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  IPv6Address: string;
  GlobalIPv6PrefixLen: number;
  IPv6Gateway: string;
  Aliases: string[];
  InterfaceName: string;
  /** The endpoint's host-side interface (a veth's host end) and its MAC; "" when its driver has none. */
  HostInterfaceName: string;
  HostMacAddress: string;
  /** The bridge the host-side interface is a port of; "" when none (or unknown: recorded by an older cnm). */
  HostBridgeName: string;
  GwPriority: number;
  DriverOpts: Record<string, string>;
}

export interface CnmSandbox {
  Id: string;
  Name: string;
  Hostname: string;
  Created: string;
  Labels: Record<string, string>;
  NetnsPath: string;
  Adopted: boolean;
  /** Adopted without a pin: released when the namespace dies (the CNI plugin's sandboxes). */
  NetnsFollow: boolean;
  HostNetwork: boolean;
  ResolvConfPath: string;
  HostsPath: string;
  HostnamePath: string;
  DaemonPid: number;
  Dns: { Servers: string[]; Search: string[]; Options: string[] };
  Networks: Record<string, CnmSandboxNetwork>;
  /** Published ports as Docker's NetworkSettings.Ports: "80/tcp" → [{HostIp, HostPort}]. */
  Ports: PortMap;
}

export type PortMap = Record<string, Array<{ HostIp: string; HostPort: string }>>;

/** The sandbox's published ports in Docker's PortMap shape, container ports in ascending order. */
export function renderPortMap(sandbox: SandboxRecord): PortMap {
  const out: PortMap = {};
  const sorted = [...(sandbox.ports ?? [])].sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol));
  for (const p of sorted) (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  return out;
}

/**
 * Docker's HostConfig.PortBindings: the bindings as requested ("" for no host address or port, "8000-8010"
 * for a range), container ports in ascending order. Records from before requests were stored show the
 * granted bindings.
 */
export function renderPortBindings(sandbox: SandboxRecord): PortMap {
  if (!sandbox.portRequests) return renderPortMap(sandbox);
  const out: PortMap = {};
  const sorted = [...sandbox.portRequests].sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol));
  for (const r of sorted) {
    const hostPort = r.hostPortStart === 0 ? '' : r.hostPortStart === r.hostPortEnd ? `${r.hostPortStart}` : `${r.hostPortStart}-${r.hostPortEnd}`;
    (out[`${r.containerPort}/${r.protocol}`] ??= []).push({ HostIp: r.hostIp, HostPort: hostPort });
  }
  return out;
}

export function renderCnmSandbox(detail: SandboxDetail, files: SandboxFiles, daemonPid: number): CnmSandbox {
  const { sandbox } = detail;
  const networks: Record<string, CnmSandboxNetwork> = {};
  for (const { endpoint, network } of detail.endpoints) {
    const a = endpointAddresses(endpoint, network);
    networks[network.name] = {
      NetworkID: network.id,
      EndpointID: endpoint.id,
      MacAddress: endpoint.macAddress,
      IPAddress: a.ipAddress,
      IPPrefixLen: a.ipPrefixLen,
      Gateway: a.gateway,
      IPv6Address: a.ipv6Address,
      GlobalIPv6PrefixLen: a.ipv6PrefixLen,
      IPv6Gateway: a.ipv6Gateway,
      Aliases: [...endpoint.aliases],
      InterfaceName: endpoint.ifName,
      HostInterfaceName: endpoint.hostInterface?.name ?? '',
      HostMacAddress: endpoint.hostInterface?.mac ?? '',
      HostBridgeName: endpoint.hostInterface?.bridge ?? '',
      GwPriority: endpoint.gwPriority,
      DriverOpts: { ...endpoint.driverOpts },
    };
  }
  return {
    Id: sandbox.id,
    Name: sandbox.name,
    Hostname: sandbox.hostname,
    Created: sandbox.created,
    Labels: { ...sandbox.labels },
    NetnsPath: files.netnsPath || sandbox.netnsPath,
    Adopted: sandbox.adopted,
    NetnsFollow: sandbox.followsNetns !== undefined,
    HostNetwork: sandbox.hostNetwork,
    ResolvConfPath: files.resolvConf,
    HostsPath: files.hosts,
    HostnamePath: files.hostname,
    DaemonPid: daemonPid,
    Dns: { Servers: [...sandbox.dns.servers], Search: [...sandbox.dns.search], Options: [...sandbox.dns.options] },
    Networks: networks,
    Ports: renderPortMap(sandbox),
  };
}
