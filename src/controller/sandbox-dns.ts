/**
 * How a sandbox resolves names: through the embedded DNS at 127.0.0.11 once it has been on a user-defined
 * network (SandboxRecord.embeddedDns, kept until the sandbox is removed), with the host-derived
 * resolv.conf otherwise (only ever the default bridge, host or none), as in Docker. The controller tells the service
 * discovery what changed; data only flows that way.
 */
import type { DiscoveryEndpoint, DiscoveryNetwork } from '../dns/discovery.js';
import type { Ctx } from './context.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import type { ResolverMode } from './sandbox-files.js';

/** Docker: the predefined networks (default bridge, host, none) have no embedded name resolution. */
export function hasNameResolution(net: NetworkRecord): boolean {
  return !net.predefined && !net.configOnly;
}

export function discoveryNetwork(net: NetworkRecord): DiscoveryNetwork {
  return { id: net.id, name: net.name, internal: net.internal, userDefined: hasNameResolution(net) };
}

export function discoveryEndpoint(sb: SandboxRecord, ep: EndpointRecord): DiscoveryEndpoint {
  // A gateway endpoint is known by its own name only (`gateway_<id>`, as Docker's): the sandbox's names
  // must not resolve, to its gateway-bridge address, for the sandboxes of every other overlay on the host.
  if (ep.outboundGateway) {
    return {
      id: ep.id,
      networkId: ep.networkId,
      sandboxId: sb.id,
      sandboxName: ep.name,
      hostname: '',
      shortId: '',
      aliases: [],
      ...(ep.ipv4Address ? { ipv4: ep.ipv4Address } : {}),
      ...(ep.ipv6Address ? { ipv6: ep.ipv6Address } : {}),
    };
  }
  return {
    id: ep.id,
    networkId: ep.networkId,
    sandboxId: sb.id,
    sandboxName: sb.name,
    hostname: sb.hostname,
    shortId: sb.id.slice(0, 12),
    aliases: ep.aliases,
    ...(ep.ipv4Address ? { ipv4: ep.ipv4Address } : {}),
    ...(ep.ipv6Address ? { ipv6: ep.ipv6Address } : {}),
  };
}

/**
 * The names of another host's endpoint on a global network, from its shared record alone: the sandbox's
 * name (the endpoint's name), its short ID and its aliases, as Docker gossips them (the hostname, a
 * sandbox setting, is not shared).
 */
export function remoteDiscoveryEndpoint(ep: EndpointRecord): DiscoveryEndpoint {
  return {
    id: ep.id,
    networkId: ep.networkId,
    sandboxId: ep.sandboxId,
    sandboxName: ep.name,
    hostname: '',
    shortId: ep.sandboxId.slice(0, 12),
    aliases: ep.aliases,
    ...(ep.ipv4Address ? { ipv4: ep.ipv4Address } : {}),
    ...(ep.ipv6Address ? { ipv6: ep.ipv6Address } : {}),
  };
}

export function resolverModeFor(ctx: Ctx, sb: SandboxRecord, endpoints: readonly EndpointRecord[]): ResolverMode {
  // A followed namespace gets no embedded server: its sockets would keep the namespace alive.
  if (sb.hostNetwork || sb.followsNetns !== undefined) return 'host';
  if (sb.embeddedDns) return 'embedded';
  const resolvable = endpoints.some((ep) => {
    const net = ctx.state.networks.get(ep.networkId);
    return net !== undefined && hasNameResolution(net);
  });
  return resolvable ? 'embedded' : 'host';
}

/**
 * A sandbox recorded before SandboxRecord.embeddedDns existed left its last user-defined network: stop
 * the embedded server in its namespace and give it the host-derived resolv.conf again.
 */
export async function leaveEmbeddedDns(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  await ctx.discovery.detach(sb.id);
  await ctx.files.writeResolvConf(sb, 'host');
}
