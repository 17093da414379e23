/**
 * Docker's remote network driver protocol (libnetwork drivers/remote/api): request shapes (zod) and their
 * translation into controller requests, and the responses. Pure: no I/O.
 *
 * Decoding follows Go's encoding/json as dockerd does (unknown fields ignored, names case-insensitive,
 * null = unset). Sizes are bounded as on the Engine API.
 */
import { z } from 'zod';
import type { AttachRequest, CreateNetworkRequest, HandoffJoin, IpamConfigRequest, PortBindingRequest } from '../../controller/types.js';
import { InvalidParameterError } from '../../errors.js';
import { cidrFirst, cidrSize, formatCidr, hostBits, parseCidr } from '../../util/ip.js';
import { goStruct, parseBody, strMap } from '../validation.js';

/** Content type of every answer (and accepted on requests besides application/json). */
export const PLUGIN_MIME = 'application/vnd.docker.plugins.v1.2+json';
/** Options under -o that cnm reads itself instead of passing them to its driver. */
export const CNM_OPTION_PREFIX = 'cnm.';
const CNM_OPTIONS = ['cnm.driver', 'cnm.name', 'cnm.ip-range'];
/** Docker's keys in CreateNetwork's Options (libnetwork netlabel). */
const GENERIC = 'com.docker.network.generic';
const ENABLE_IPV6 = 'com.docker.network.enable_ipv6';
const INTERNAL = 'com.docker.network.internal';
const PORTMAP = 'com.docker.network.portmap';
/** Interfaces handed to Docker are named eth0, eth1, ... in the container. */
export const DST_PREFIX = 'eth';

const MAX_POOLS = 16;
const id = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const str = z.string().max(4096).nullish();

const ipamData = goStruct({
  AddressSpace: str,
  Pool: z.string().max(64),
  Gateway: z.string().max(64).nullish(),
  AuxAddresses: strMap,
});

const createNetworkSchema = goStruct({
  NetworkID: id,
  // Values of several types (a map, booleans); only the keys below are read.
  Options: z.record(z.string(), z.unknown()).nullish(),
  IPv4Data: z.array(ipamData).max(MAX_POOLS, `more than ${MAX_POOLS} pools`).nullish(),
  IPv6Data: z.array(ipamData).max(MAX_POOLS, `more than ${MAX_POOLS} pools`).nullish(),
});

const networkOnlySchema = goStruct({ NetworkID: id });
const endpointSchema = goStruct({ NetworkID: id, EndpointID: id });
const createEndpointSchema = goStruct({
  NetworkID: id,
  EndpointID: id,
  Interface: goStruct({ Address: str, AddressIPv6: str, MacAddress: str }).nullish(),
  Options: z.record(z.string(), z.unknown()).nullish(),
});
const joinSchema = goStruct({ NetworkID: id, EndpointID: id, SandboxKey: z.string().max(4096).nullish() });
const externalSchema = goStruct({ NetworkID: id, EndpointID: id, Options: z.record(z.string(), z.unknown()).nullish() });
const discoverySchema = goStruct({ DiscoveryType: z.number().int().nullish(), DiscoveryData: z.unknown() });

/**
 * Where cnm's own sandboxes get their addresses on a network Docker's IPAM also allocates from: Docker
 * hands out the lowest free address first (and tells the plugin nothing about its --ip-range), so cnm
 * takes the upper half of the subnet unless `-o cnm.ip-range=CIDR` says otherwise. Addresses either side
 * assigns are claimed in cnm's store, so a collision (Docker past the middle) is refused, never shared.
 */
function sandboxRange(pool: string, wanted: string | undefined): string | undefined {
  const cidr = parseCidr(pool);
  if (!cidr) return undefined; // the controller refuses the subnet with its own words
  if (wanted !== undefined) {
    const range = parseCidr(wanted);
    return range && range.family === cidr.family ? wanted : undefined;
  }
  if (hostBits(cidr) < 3) return undefined; // a /30 or smaller has no halves worth keeping apart
  return formatCidr({ family: cidr.family, address: cidrFirst(cidr) + cidrSize(cidr) / 2n, prefixLength: cidr.prefixLength + 1 });
}

/** "10.0.0.1/24" → "10.0.0.1" (Docker sends gateways and auxiliary addresses with the prefix length). */
function bare(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

function boolOption(options: Record<string, unknown>, key: string): boolean {
  const v = options[key];
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new InvalidParameterError(`invalid option ${key}: ${JSON.stringify(v).slice(0, 40)} is not a boolean`);
}

/**
 * CreateNetwork → a cnm network with Docker's ID and Docker's pools; -o cnm.driver / cnm.name are cnm's.
 * A global driver's network (cnm.driver=overlay) of a name another host's Docker already made is that
 * one (the controller decides; the name must be given).
 */
export function toCreateNetwork(body: unknown, pluginName: string): CreateNetworkRequest & { id: string } {
  const b = parseBody(createNetworkSchema, body);
  const options = b.Options ?? {};
  const generic = parseBody(strMap.transform((m) => m ?? {}), options[GENERIC] ?? {});
  const driverOptions: Record<string, string> = {};
  for (const [key, value] of Object.entries(generic)) {
    if (!key.startsWith(CNM_OPTION_PREFIX)) driverOptions[key] = value;
    else if (!CNM_OPTIONS.includes(key)) {
      throw new InvalidParameterError(`unknown option ${key}: cnm's own options are ${CNM_OPTIONS.join(' and ')}`);
    }
  }
  const configs = (data: z.infer<typeof ipamData>[] | null | undefined): IpamConfigRequest[] =>
    (data ?? []).map((d) => ({
      subnet: d.Pool,
      ...withRange(sandboxRange(d.Pool, generic['cnm.ip-range'])),
      ...(d.Gateway ? { gateway: bare(d.Gateway) } : {}),
      ...(d.AuxAddresses && Object.keys(d.AuxAddresses).length > 0
        ? { auxAddresses: Object.fromEntries(Object.entries(d.AuxAddresses).map(([k, v]) => [k, bare(v)])) }
        : {}),
    }));
  const withRange = (ipRange: string | undefined) => (ipRange === undefined ? {} : { ipRange });
  const v4 = configs(b.IPv4Data);
  const v6 = configs(b.IPv6Data);
  return {
    id: b.NetworkID,
    name: generic['cnm.name'] ?? `${pluginName}-${b.NetworkID.slice(0, 12)}`,
    ...(generic['cnm.name'] !== undefined ? { nameGiven: true } : {}),
    driver: generic['cnm.driver'] || 'bridge',
    forHandoff: true,
    internal: boolOption(options, INTERNAL),
    // Docker's IPAM decided the pools: exactly those, and no family cnm would add a pool of its own for.
    enableIPv4: v4.length > 0,
    enableIPv6: v6.length > 0 && (boolOption(options, ENABLE_IPV6) || v4.length === 0),
    ipam: { configs: [...v4, ...v6] },
    options: driverOptions,
    labels: { 'cnm.docker-plugin': pluginName },
  };
}

export function toNetworkId(body: unknown): string {
  return parseBody(networkOnlySchema, body).NetworkID;
}

export function toEndpointRef(body: unknown): { networkId: string; endpointId: string } {
  const b = parseBody(endpointSchema, body);
  return { networkId: b.NetworkID, endpointId: b.EndpointID };
}

export function toAttach(body: unknown): AttachRequest {
  const b = parseBody(createEndpointSchema, body);
  const i = b.Interface ?? {};
  return {
    networkId: b.NetworkID,
    endpointId: b.EndpointID,
    owner: 'docker',
    ...(i.Address ? { ipv4Address: i.Address } : {}),
    ...(i.AddressIPv6 ? { ipv6Address: i.AddressIPv6 } : {}),
    ...(i.MacAddress ? { macAddress: i.MacAddress } : {}),
  };
}

/** Docker refuses an answer that changes what it sent: only a MAC it left to the driver comes back. */
export function createEndpointResponse(req: AttachRequest, mac: string): { Interface?: { MacAddress: string } } {
  return req.macAddress ? {} : { Interface: { MacAddress: mac } };
}

export function toJoin(body: unknown): { networkId: string; endpointId: string; sandboxKey: string } {
  const b = parseBody(joinSchema, body);
  return { networkId: b.NetworkID, endpointId: b.EndpointID, sandboxKey: b.SandboxKey ?? '' };
}

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  DisableGatewayService?: boolean;
}

export function joinResponse(join: HandoffJoin): JoinResponse {
  const out: JoinResponse = { InterfaceName: { SrcName: join.srcName, DstPrefix: DST_PREFIX } };
  if (join.gatewayIpv4) out.Gateway = join.gatewayIpv4;
  if (join.gatewayIpv6) out.GatewayIPv6 = join.gatewayIpv6;
  // No gateway: Docker connects the container to its own docker_gwbridge (the way out, and where it
  // publishes -p) when the driver asks for one (a non-internal overlay, as Docker's own overlay driver);
  // otherwise (internal or isolated network) Docker must not add one either.
  if (!join.gatewayIpv4 && !join.gatewayIpv6 && !join.requiresDefaultGateway) out.DisableGatewayService = true;
  return out;
}

/** Docker's types.PortBinding as dockerd encodes it (Proto is the IP protocol number; IPs "" when unset). */
const portBinding = goStruct({
  Proto: z.number().int(),
  IP: z.string().max(64).nullish(),
  Port: z.number().int(),
  HostIP: z.string().max(64).nullish(),
  HostPort: z.number().int().nullish(),
  HostPortEnd: z.number().int().nullish(),
});
const MAX_PORT_BINDINGS = 65536;
const PROTOCOLS: Record<number, PortBindingRequest['protocol']> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/**
 * ProgramExternalConnectivity carries the container's published ports (-p) in the sandbox's options:
 * `com.docker.network.portmap`, a list of Docker's PortBinding ({Proto: 6, IP, Port: 80, HostIP: "",
 * HostPort: 8080, HostPortEnd: 8080}; HostPort 0 = any free port). `com.docker.network.exposedports`
 * (EXPOSE without -p) publishes nothing and is not read. The controller checks the values.
 */
export function toExternalConnectivity(body: unknown): { networkId: string; endpointId: string; ports: PortBindingRequest[] } {
  const b = parseBody(externalSchema, body);
  const raw = (b.Options ?? {})[PORTMAP];
  const list = raw === undefined || raw === null ? [] : parseBody(z.array(portBinding).max(MAX_PORT_BINDINGS), raw);
  const ports = list.map((p): PortBindingRequest => {
    const protocol = PROTOCOLS[p.Proto];
    if (!protocol) throw new InvalidParameterError(`invalid port binding: protocol number ${p.Proto} (tcp 6, udp 17, sctp 132)`);
    const start = p.HostPort ?? 0;
    return { protocol, containerPort: p.Port, hostIp: p.HostIP ?? '', hostPortStart: start, hostPortEnd: start === 0 ? 0 : Math.max(start, p.HostPortEnd ?? 0) };
  });
  return { networkId: b.NetworkID, endpointId: b.EndpointID, ports };
}

export function checkDiscovery(body: unknown): void {
  parseBody(discoverySchema, body);
}
