/**
 * Attachments: endpoints of another runtime's containers (Docker's, through the remote driver protocol).
 * The runtime owns the container's namespace, so cnm's part is smaller than a sandbox endpoint's: claim
 * the addresses the runtime's IPAM chose (cnm's IPAM then never hands them to a sandbox), create the
 * interface in the daemon's namespace at join for the runtime to move into its container, remove it at
 * leave. Record and address claims are one store transaction; the kernel is cleaned before the record goes.
 */
import { AddressInUseError, ForbiddenError, InvalidParameterError, NotFoundError, StoreConflictError } from '../errors.js';
import { subnetContainsIp } from '../util/ip.js';
import { randomMac, rfc3339Nano } from '../util/ids.js';
import { revokeAttachmentPorts } from './attachment-ports.js';
import { runtimeOf, toDriverNetwork, type Ctx, type NetworkRuntime } from './context.js';
import { isGlobal, publishEndpoint, withdrawEndpoint } from './cluster.js';
import { handoffNetworkId, removeHandoffNetwork } from './handoff-networks.js';
import type { AttachmentRecord, EndpointRecord, NetworkRecord } from './records.js';
import type { AddressClaim } from './repository.js';
import type { AttachRequest, HandoffJoin } from './types.js';
import type { DriverEndpoint } from '../drivers/types.js';

const ID_RE = /^[0-9a-f]{64}$/;
const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/**
 * The network by exact ID (front doors for other runtimes never look up by name or prefix), or by the
 * runtime's own ID for a global network another host made (an alias).
 */
export function networkById(ctx: Ctx, id: string): NetworkRecord {
  const net = ctx.state.networks.get(handoffNetworkId(ctx, id));
  if (!net) throw new NotFoundError(`network ${id} not found`);
  return net;
}

export function attachmentOf(ctx: Ctx, networkId: string, endpointId: string): AttachmentRecord {
  const att = ctx.state.attachments.get(endpointId);
  if (!att || att.networkId !== handoffNetworkId(ctx, networkId)) throw new NotFoundError(`endpoint ${endpointId} not found on network ${networkId}`);
  return att;
}

/** Addresses of an attachment as claims on its network's pools. */
export function attachmentClaims(net: NetworkRecord, att: AttachmentRecord): AddressClaim[] {
  const out: AddressClaim[] = [];
  for (const cidr of [att.ipv4Address, att.ipv6Address]) {
    if (!cidr) continue;
    const address = cidr.slice(0, cidr.indexOf('/'));
    const pool = net.ipam.pools.find((p) => subnetContainsIp(p.subnet, address));
    if (pool) out.push({ poolId: pool.id, address });
  }
  return out;
}

export function toHandoffEndpoint(att: AttachmentRecord, rt: NetworkRuntime): DriverEndpoint<unknown> {
  return {
    id: att.id,
    options: rt.driver.parseEndpointOptions({}),
    macAddress: att.macAddress,
    ipv4Address: att.ipv4Address,
    ipv6Address: att.ipv6Address,
    ifName: '',
    driverState: att.driverState,
  };
}

export async function createAttachment(ctx: Ctx, req: AttachRequest): Promise<AttachmentRecord> {
  if (!ID_RE.test(req.endpointId)) throw new InvalidParameterError(`invalid endpoint ID ${JSON.stringify(req.endpointId)}: 64 lowercase hex digits`);
  const net = networkById(ctx, req.networkId);
  const rt = runtimeOf(ctx, net);
  if (!rt.driver.joinForHandoff) throw new ForbiddenError(`network ${net.name} cannot take containers of other runtimes (cnm driver ${net.driver})`);
  if (rt.error !== undefined) throw new ForbiddenError(`network ${net.name} is out of service: ${rt.error}`);
  if (ctx.state.attachments.has(req.endpointId)) throw new ForbiddenError(`endpoint ${req.endpointId} already exists`);
  const mac = req.macAddress ? req.macAddress.toLowerCase() : randomMac();
  if (!MAC_RE.test(mac) || parseInt(mac.slice(0, 2), 16) & 1) throw new InvalidParameterError(`invalid MAC address ${JSON.stringify(req.macAddress)}`);
  const att: AttachmentRecord = {
    id: req.endpointId,
    networkId: net.id,
    owner: req.owner,
    macAddress: mac,
    ...(req.ipv4Address ? { ipv4Address: checkAddress(net, req.ipv4Address, 4) } : {}),
    ...(req.ipv6Address ? { ipv6Address: checkAddress(net, req.ipv6Address, 6) } : {}),
    driverState: {},
    created: rfc3339Nano(),
  };
  const claims = attachmentClaims(net, att);
  const granted: AddressClaim[] = [];
  try {
    for (const c of claims) {
      ctx.ipam.requestAddress(c.poolId, c.address);
      granted.push(c);
    }
    if (isGlobal(net)) await publishAttachment(ctx, net, att, claims);
    else await ctx.repo.createAttachment(att, claims);
  } catch (err) {
    granted.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    const inUse = err instanceof StoreConflictError || err instanceof AddressInUseError;
    if (inUse && isGlobal(net)) {
      // Docker's IPAM on each host hands out the same lowest addresses: say what to do about it.
      const what = [att.ipv4Address, att.ipv6Address].filter(Boolean).map((a) => a!.split('/')[0]).join(' / ');
      throw new AddressInUseError(`Address already in use: ${what} is taken on network ${net.name} (by another host? give each host's Docker network its own --ip-range)`);
    }
    if (err instanceof StoreConflictError) throw new AddressInUseError('Address already in use');
    throw err;
  }
  ctx.state.putAttachment(att);
  ctx.emit({ type: 'network', action: 'connect', id: net.id, attributes: { container: `ep-${att.id}`, name: net.name, type: net.driver } });
  return att;
}

/**
 * An attachment of a global network as the other hosts see an endpoint (its record, with this host's id
 * and VTEP, so they program it as a peer): published with its address claims in one transaction of the
 * cluster store (an address another host holds is refused), then the attachment in the local store.
 */
function attachmentEndpoint(att: AttachmentRecord): EndpointRecord {
  return {
    id: att.id, name: `${att.owner}-${att.id.slice(0, 12)}`, networkId: att.networkId, sandboxId: att.id, macAddress: att.macAddress,
    ...(att.ipv4Address ? { ipv4Address: att.ipv4Address } : {}),
    ...(att.ipv6Address ? { ipv6Address: att.ipv6Address } : {}),
    staticIpv4: true, staticIpv6: true, aliases: [], gwPriority: 0, driverOpts: {}, ifName: '', driverState: {}, created: att.created,
  };
}

async function publishAttachment(ctx: Ctx, net: NetworkRecord, att: AttachmentRecord, claims: AddressClaim[]): Promise<void> {
  await publishEndpoint(ctx, net, attachmentEndpoint(att), [...claims]);
  try {
    await ctx.repo.createAttachment(att, []);
  } catch (err) {
    await withdrawEndpoint(ctx, net, attachmentEndpoint(att)).catch(() => undefined);
    throw err;
  }
}

/** "10.0.0.2/24" inside one of the network's pools of that family, with the pool's prefix length. */
function checkAddress(net: NetworkRecord, cidr: string, family: 4 | 6): string {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const pool = net.ipam.pools.find((p) => p.family === family && subnetContainsIp(p.subnet, address));
  if (!pool) throw new InvalidParameterError(`address ${cidr} is not in a subnet of network ${net.name}`);
  const length = pool.subnet.slice(pool.subnet.indexOf('/') + 1);
  if (slash >= 0 && cidr.slice(slash + 1) !== length) {
    throw new InvalidParameterError(`address ${cidr} does not have the prefix length of subnet ${pool.subnet}`);
  }
  return `${address}/${length}`;
}

export async function joinAttachment(ctx: Ctx, networkId: string, endpointId: string, sandboxKey: string): Promise<HandoffJoin> {
  const att = attachmentOf(ctx, networkId, endpointId);
  if (att.joined) throw new ForbiddenError(`endpoint ${endpointId} is already joined to a container`);
  const net = networkById(ctx, networkId);
  const rt = runtimeOf(ctx, net);
  if (!rt.driver.joinForHandoff) throw new ForbiddenError(`network ${net.name} cannot take containers of other runtimes`);
  const dnet = toDriverNetwork(net, rt.options);
  const dep = toHandoffEndpoint(att, rt);
  const result = await rt.driver.joinForHandoff(dnet, dep);
  const joined: AttachmentRecord = {
    ...att,
    driverState: result.driverState,
    joined: { srcName: result.srcName, sandboxKey, gatewayIpv4: result.gatewayIpv4, gatewayIpv6: result.gatewayIpv6 },
  };
  try {
    await ctx.repo.updateAttachment(joined);
  } catch (err) {
    await rt.driver.leave(dnet, dep, { id: att.id, netnsPath: null }).catch(() => undefined);
    throw err;
  }
  ctx.state.putAttachment(joined);
  return {
    srcName: result.srcName,
    gatewayIpv4: result.gatewayIpv4,
    gatewayIpv6: result.gatewayIpv6,
    ...(result.requiresDefaultGateway && !net.internal ? { requiresDefaultGateway: true as const } : {}),
  };
}

export async function leaveAttachment(ctx: Ctx, networkId: string, endpointId: string): Promise<void> {
  const att = ctx.state.attachments.get(endpointId);
  if (!att || att.networkId !== handoffNetworkId(ctx, networkId) || !att.joined) return;
  await revokeAttachmentPorts(ctx, networkId, endpointId);
  const net = networkById(ctx, networkId);
  const rt = runtimeOf(ctx, net);
  // Deleting the host end removes the container's end with it, wherever the runtime moved it.
  await rt.driver.leave(toDriverNetwork(net, rt.options), toHandoffEndpoint(att, rt), { id: att.id, netnsPath: null });
  const left: AttachmentRecord = { ...ctx.state.attachments.get(att.id)!, driverState: {} };
  delete left.joined;
  await ctx.repo.updateAttachment(left);
  ctx.state.putAttachment(left);
}

export async function removeAttachment(ctx: Ctx, networkId: string, endpointId: string): Promise<void> {
  const att = ctx.state.attachments.get(endpointId);
  if (!att || att.networkId !== handoffNetworkId(ctx, networkId)) return;
  await leaveAttachment(ctx, networkId, endpointId);
  const net = networkById(ctx, networkId);
  const claims = attachmentClaims(net, att);
  if (isGlobal(net)) {
    await withdrawEndpoint(ctx, net, attachmentEndpoint(att));
    await ctx.repo.deleteAttachment(att, []);
  } else await ctx.repo.deleteAttachment(att, claims);
  ctx.state.deleteAttachment(att.id);
  claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  ctx.emit({ type: 'network', action: 'disconnect', id: net.id, attributes: { container: `ep-${att.id}`, name: net.name, type: net.driver } });
}

/**
 * The runtime deletes its network: idempotent (already gone is done). The runtime only does so once it has
 * no endpoints there, so an attachment cnm still holds is stale (its DeleteEndpoint was lost while cnm
 * was down) and goes first; cnm's own sandboxes on the network refuse it as `network rm` does. The
 * runtime's alias of a global network made elsewhere only drops the alias (handoff-networks.ts).
 */
export async function removeNetworkById(ctx: Ctx, id: string): Promise<void> {
  await removeHandoffNetwork(ctx, id, async (networkId) => {
    for (const att of ctx.state.attachmentsOfNetwork(networkId)) {
      ctx.logger.warn('removing an endpoint the runtime no longer has, with its network', { network: networkId, endpoint: att.id, owner: att.owner });
      await removeAttachment(ctx, networkId, att.id);
    }
  });
}
