/**
 * Outbound connectivity of sandboxes whose networks give no gateway (overlays): Docker's docker_gwbridge.
 * A driver's join says `requiresDefaultGateway`; when a sandbox has such an endpoint on a non-internal
 * network and no endpoint that gives an IPv4 gateway, the controller connects it to the host's gateway
 * network (`cnm_gwbridge`, a local bridge network made the first time it is needed: ICC off, masquerade
 * on, a subnet from the local pools) through the normal connect path — record, address claims, rollback,
 * events and restart all as for any endpoint. The endpoint is named `gateway_<sandbox id 12>` and marked
 * `outboundGateway`; when no endpoint needs it any more (the last overlay left, or a network that gives a
 * gateway joined) it is removed the same way. Which network and options: ControllerDeps.gatewayNetwork.
 */
import { ForbiddenError } from '../errors.js';
import type { Ctx } from './context.js';
import { connect, removeEndpoint } from './endpoints.js';
import { createNetwork } from './networks.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import type { CreateNetworkRequest } from './types.js';

/** Docker's docker_gwbridge under cnm's names: a bridge `cnmgw0`, no ICC, masqueraded, IPv4 only. */
export const DEFAULT_GATEWAY_NETWORK: CreateNetworkRequest = {
  name: 'cnm_gwbridge',
  driver: 'bridge',
  enableIPv6: false,
  options: {
    'com.docker.network.bridge.name': 'cnmgw0',
    'com.docker.network.bridge.enable_icc': 'false',
    'com.docker.network.bridge.enable_ip_masquerade': 'true',
  },
};

export function gatewayNetworkName(ctx: Ctx): string {
  return (ctx.gatewayNetwork ?? DEFAULT_GATEWAY_NETWORK).name ?? DEFAULT_GATEWAY_NETWORK.name!;
}

/** The endpoint cnm made on the gateway network for this sandbox, if any. */
export function gatewayEndpointOf(ctx: Ctx, sb: SandboxRecord): EndpointRecord | undefined {
  return ctx.state.endpointsOfSandbox(sb.id).find((e) => e.outboundGateway);
}

/**
 * Docker's rule (needDefaultGW): an endpoint that gives an IPv4 gateway means no; otherwise yes when an
 * endpoint on a non-internal network asked for one.
 */
export function needsGatewayEndpoint(ctx: Ctx, sb: SandboxRecord): boolean {
  if (sb.hostNetwork) return false;
  const own = ctx.state.endpointsOfSandbox(sb.id).filter((e) => !e.outboundGateway);
  if (own.some((e) => e.gatewayIpv4 !== undefined)) return false;
  return own.some((e) => e.requiresGateway && ctx.state.networks.get(e.networkId)?.internal === false);
}

export type GatewayChange = 'added' | 'removed' | 'none';

/** Adds or removes the sandbox's gateway endpoint so that it matches needsGatewayEndpoint. */
export async function syncGatewayEndpoint(ctx: Ctx, sb: SandboxRecord): Promise<GatewayChange> {
  const have = gatewayEndpointOf(ctx, sb);
  const need = needsGatewayEndpoint(ctx, sb);
  if (need && !have) {
    const net = await gatewayNetwork(ctx);
    await connect(ctx, net, sb, {}, { outboundGateway: true });
    return 'added';
  }
  if (!need && have) {
    const net = ctx.state.networks.get(have.networkId)!;
    await removeEndpoint(ctx, net, sb, have, false);
    return 'removed';
  }
  return 'none';
}

/** The gateway network, made now when there is none (a network of that name made by the user is taken as it is, as Docker does). */
async function gatewayNetwork(ctx: Ctx): Promise<NetworkRecord> {
  const spec = ctx.gatewayNetwork ?? DEFAULT_GATEWAY_NETWORK;
  const existing = ctx.state.networkByName(gatewayNetworkName(ctx));
  if (!existing) return createNetwork(ctx, spec);
  const error = ctx.networks.get(existing.id)?.error;
  if (error !== undefined) throw new ForbiddenError(`gateway network ${existing.name} is out of service: ${error}`);
  if (existing.internal || existing.configOnly) {
    throw new ForbiddenError(`network ${existing.name} cannot be the gateway network: it is ${existing.internal ? 'internal' : 'config-only'}`);
  }
  return existing;
}
