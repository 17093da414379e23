/**
 * Docker's network JSON (api/types/network: Summary for lists, Inspect with Containers for one
 * network) and the list / prune filters that select networks.
 */
import type { NetworkRecord } from '../controller/records.js';
import type { NetworkDetail } from '../controller/types.js';
import { InvalidParameterError } from '../errors.js';
import type { Pool } from '../ipam/types.js';
import { FilterArgs, parseTimeOrDuration, rfc3339ToNanos } from './filters.js';

export interface DockerIpamConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface DockerNetworkSummary {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string>; Config: DockerIpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export interface DockerEndpointResource {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

export interface DockerNetworkInspect extends DockerNetworkSummary {
  Containers: Record<string, DockerEndpointResource>;
  /**
   * cnm's own field, only on a network that is out of service: why it could not be restored at start-up
   * (Docker has no such state; its clients ignore the unknown key).
   */
  CnmError?: string;
  /** Global-scope networks: the hosts with endpoints on it (Docker's field; Name is cnm's host id). */
  Peers?: Array<{ Name: string; IP: string }>;
}

function renderPool(pool: Pool): DockerIpamConfig {
  const config: DockerIpamConfig = { Subnet: pool.subnet };
  if (pool.ipRange) config.IPRange = pool.ipRange;
  if (pool.gateway) config.Gateway = pool.gateway;
  if (Object.keys(pool.auxAddresses).length > 0) config.AuxiliaryAddresses = { ...pool.auxAddresses };
  return config;
}

/** List item: everything but Containers (moby's network.Summary). */
export function renderNetworkSummary(net: NetworkRecord): DockerNetworkSummary {
  // IPv4 pools first, as Docker lists its v4 then v6 IPAM configs.
  const pools = [...net.ipam.pools].sort((a, b) => a.family - b.family);
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: net.scope,
    Driver: net.driver,
    EnableIPv4: net.enableIPv4,
    EnableIPv6: net.enableIPv6,
    IPAM: { Driver: net.ipam.driver, Options: { ...net.ipam.options }, Config: pools.map(renderPool) },
    Internal: net.internal,
    Attachable: net.attachable,
    Ingress: net.ingress,
    ConfigFrom: { Network: net.configFrom ?? '' },
    ConfigOnly: net.configOnly,
    Options: { ...net.options },
    Labels: { ...net.labels },
  };
}

/** One network with its endpoints keyed by sandbox ID (moby's network.Inspect). */
export function renderNetworkInspect(detail: NetworkDetail): DockerNetworkInspect {
  const containers: Record<string, DockerEndpointResource> = {};
  for (const { endpoint, sandbox } of detail.endpoints) {
    containers[sandbox.id] = {
      // The endpoint's name: its sandbox's, or `gateway_<id>` on the gateway network (as Docker shows it).
      Name: endpoint.name,
      EndpointID: endpoint.id,
      MacAddress: endpoint.macAddress,
      IPv4Address: endpoint.ipv4Address ?? '',
      IPv6Address: endpoint.ipv6Address ?? '',
    };
  }
  // Docker keys an endpoint without a container of its own as "ep-<endpoint ID>"; these are Docker's
  // containers on a cnm network (plugin front door), whose names cnm is not told.
  for (const att of detail.attachments) {
    containers[`ep-${att.id}`] = {
      Name: `${att.owner}-${att.id.slice(0, 12)}`,
      EndpointID: att.id,
      MacAddress: att.macAddress,
      IPv4Address: att.ipv4Address ?? '',
      IPv6Address: att.ipv6Address ?? '',
    };
  }
  const inspect: DockerNetworkInspect = { ...renderNetworkSummary(detail.network), Containers: containers };
  if (detail.error !== undefined) inspect.CnmError = detail.error;
  if (detail.peers) inspect.Peers = detail.peers.map((p) => ({ Name: p.name, IP: p.ip }));
  return inspect;
}

const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];
const PRUNE_FILTERS = ['label', 'label!', 'until'];

/** moby daemon/network/filter.go: a predicate over networks for GET /networks. */
export function networkListFilter(args: FilterArgs): (detail: NetworkDetail) => boolean {
  args.validate(LIST_FILTERS);
  const dangling = parseDangling(args);
  for (const t of args.get('type')) {
    if (t !== 'builtin' && t !== 'custom') throw new InvalidParameterError(`invalid filter: 'type'='${t}'`);
  }
  return (detail) => {
    const net = detail.network;
    if (!commonMatch(args, net)) return false;
    if (args.contains('driver') && !args.exactMatch('driver', net.driver)) return false;
    if (args.contains('name') && !args.match('name', net.name)) return false;
    if (args.contains('id') && !args.match('id', net.id)) return false;
    if (args.contains('scope') && !args.exactMatch('scope', net.scope)) return false;
    if (dangling !== undefined) {
      const inUse = net.predefined || detail.endpoints.length > 0 || detail.attachments.length > 0;
      if (dangling === inUse) return false;
    }
    const types = args.get('type');
    // Docker decides on the first value only.
    if (types.length > 0 && (types[0] === 'builtin') !== net.predefined) return false;
    return true;
  };
}

/** A predicate for POST /networks/prune (the controller adds "unused" and "not predefined"). */
export function networkPruneFilter(args: FilterArgs): (net: NetworkRecord) => boolean {
  args.validate(PRUNE_FILTERS);
  const untils = args.get('until');
  if (untils.length > 1) throw new InvalidParameterError('more than one until filter specified');
  const until = untils.length === 1 ? parseTimeOrDuration(untils[0]!) : undefined;
  return (net) => {
    // Config-only networks hold configuration for others; Docker never prunes them.
    if (net.configOnly) return false;
    if (!commonMatch(args, net)) return false;
    if (until !== undefined && rfc3339ToNanos(net.created) > until) return false;
    return true;
  };
}

function commonMatch(args: FilterArgs, net: NetworkRecord): boolean {
  if (args.contains('label') && !args.matchKVList('label', net.labels)) return false;
  if (args.contains('label!') && args.matchKVList('label!', net.labels)) return false;
  return true;
}

function parseDangling(args: FilterArgs): boolean | undefined {
  const values = args.get('dangling');
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new InvalidParameterError('got more than one value for filter key "dangling"');
  switch (values[0]) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      throw new InvalidParameterError(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`);
  }
}
