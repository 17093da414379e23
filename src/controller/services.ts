/**
 * Services: a name on one network spread over backend endpoints. Creating one validates everything,
 * allocates the VIP (vip mode) from the network's IPv4 pool and persists record, name claim and address
 * claim in one transaction, then programs the kernel (VIP on the bridge), nftables (the service's slot
 * map) and the embedded DNS — undoing all of it if a step fails. Membership lives on the endpoints
 * (EndpointRecord.services), so a backend leaves its services in the same operation that removes it:
 * every connect, disconnect, sandbox removal and reconcile ends in syncBackends, which tells the
 * firewall (vip mode) and the DNS the service's backends as they now are.
 */
import { ConflictError, errorMessage, ForbiddenError, InvalidParameterError, StoreConflictError, TeardownErrors } from '../errors.js';
import type { FirewallService } from '../firewall/types.js';
import { newId, rfc3339Nano } from '../util/ids.js';
import { runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import type { DiscoveryService } from '../dns/discovery.js';
import type { EndpointRecord, NetworkRecord, ServicePort, ServiceRecord } from './records.js';
import type { AddressClaim } from './repository.js';
import type { CreateServiceRequest } from './types.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export async function createService(ctx: Ctx, req: CreateServiceRequest): Promise<ServiceRecord> {
  const name = req.name;
  if (!NAME_RE.test(name) || name.length > 63 || name.startsWith('tasks.')) {
    throw new InvalidParameterError(`invalid service name ${JSON.stringify(name)}: letters, digits, "_", "." and "-", at most 63`);
  }
  if (ctx.state.serviceByName(name)) throw new ConflictError(`service with name ${name} already exists`);
  const net = ctx.state.network(req.network);
  const mode = req.mode ?? 'vip';
  if (mode !== 'vip' && mode !== 'dnsrr') throw new InvalidParameterError(`invalid service mode ${JSON.stringify(mode)}: vip or dnsrr`);
  const ports = parsePorts(req.ports ?? []);
  if (mode === 'dnsrr' && ports.length > 0) {
    throw new InvalidParameterError('ports apply to vip mode only: a dnsrr service has no address to balance');
  }
  if (net.predefined || net.configOnly) throw new ForbiddenError(`services need a user-defined network, not ${net.name}`);
  const rt = runtimeOf(ctx, net);
  const driverNet = toDriverNetwork(net, rt.options);
  const pools = net.ipam.pools.filter((p) => p.family === 4);
  if (mode === 'vip' && (!rt.driver.setServiceAddress || !net.enableIPv4 || pools.length === 0)) {
    throw new InvalidParameterError(`vip mode needs a bridge network with IPv4; use --mode dnsrr on ${net.name}`);
  }
  const pool = req.vipSubnet === undefined ? pools[0] : pools.find((p) => p.subnet === req.vipSubnet);
  if (mode === 'vip' && !pool) throw new InvalidParameterError(`network ${net.name} has no IPv4 subnet ${req.vipSubnet}`);

  const claims: AddressClaim[] = [];
  if (mode === 'vip') claims.push({ poolId: pool!.id, address: ctx.ipam.requestAddress(pool!.id) });
  const claim = claims[0];
  const prefix = claim && net.ipam.pools.find((p) => p.id === claim.poolId)!.subnet.split('/')[1];
  const svc: ServiceRecord = {
    id: newId(), name, networkId: net.id, mode, ports, labels: req.labels ?? {}, created: rfc3339Nano(),
    ...(claim ? { vip: `${claim.address}/${prefix}`, vipPoolId: claim.poolId } : {}),
  };
  try {
    await ctx.repo.createService(svc, claims);
  } catch (err) {
    claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    if (err instanceof StoreConflictError && err.key.includes('/names/')) throw new ConflictError(`service with name ${name} already exists`);
    throw err;
  }
  const undo = new TeardownErrors();
  let addressed = false;
  try {
    if (svc.vip) {
      await rt.driver.setServiceAddress!(driverNet, vipAddress(svc)!, true);
      addressed = true;
      await ctx.firewall.setService(firewallService(svc, []));
    }
  } catch (err) {
    if (svc.vip) await undo.attempt('remove firewall service', () => ctx.firewall.removeService(firewallService(svc, [])));
    if (addressed) await undo.attempt('remove VIP', () => rt.driver.setServiceAddress!(driverNet, vipAddress(svc)!, false));
    await undo.attempt('forget service', () => ctx.repo.deleteService(svc, claims));
    claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    if (undo.list.length > 0) ctx.logger.error('rollback of service create incomplete', { errors: undo.list });
    throw err;
  }
  ctx.state.putService(svc);
  ctx.discovery.serviceChanged(discoveryService(svc, []));
  ctx.emit({ type: 'service', action: 'create', id: svc.id, attributes: { name, network: net.name, mode } });
  return svc;
}

/** Kernel and firewall first, record last; a failure puts back what was already undone. */
export async function removeService(ctx: Ctx, ref: string): Promise<void> {
  const svc = ctx.state.service(ref);
  const net = ctx.state.networks.get(svc.networkId)!;
  const rt = runtimeOf(ctx, net);
  const driverNet = toDriverNetwork(net, rt.options);
  const claims = vipClaims(svc);
  let unbalanced = false;
  let unaddressed = false;
  try {
    if (svc.vip) {
      unbalanced = true;
      await ctx.firewall.removeService(firewallService(svc, []));
      unaddressed = true;
      await rt.driver.setServiceAddress?.(driverNet, vipAddress(svc)!, false);
    }
    await ctx.repo.deleteService(svc, claims);
  } catch (err) {
    const undo = new TeardownErrors();
    if (unaddressed) await undo.attempt('restore VIP', async () => rt.driver.setServiceAddress?.(driverNet, vipAddress(svc)!, true));
    if (unbalanced) await undo.attempt('restore firewall service', () => ctx.firewall.setService(firewallService(svc, ctx.state.backendsOf(svc))));
    if (undo.list.length > 0) ctx.logger.error('rollback of service rm incomplete', { errors: undo.list });
    throw err;
  }
  ctx.state.deleteService(svc.id);
  claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  // The backends stay connected (their endpoints keep the stale ID, which nothing resolves any more).
  ctx.discovery.serviceRemoved(svc.id);
  ctx.emit({ type: 'service', action: 'destroy', id: svc.id, attributes: { name: svc.name } });
}

/** Service references of a connect → IDs, each a service on `net` (400 otherwise). */
export function resolveMembership(ctx: Ctx, net: NetworkRecord, refs: readonly string[] | undefined): string[] {
  const ids: string[] = [];
  for (const ref of refs ?? []) {
    const svc = ctx.state.service(ref);
    if (svc.networkId !== net.id) {
      throw new InvalidParameterError(`service ${svc.name} is on network ${ctx.state.networks.get(svc.networkId)?.name}, not ${net.name}`);
    }
    if (!ids.includes(svc.id)) ids.push(svc.id);
  }
  return ids;
}

/**
 * Point each service's DNS names and (vip mode) its balancing at its current backends, plus `joining`
 * (an endpoint being connected, not yet in the state). The DNS first: it cannot fail, so a firewall
 * failure leaves both to the caller's rollback, which calls this again without the change.
 */
export async function syncBackends(
  ctx: Ctx,
  serviceIds: readonly string[],
  change: { joining?: EndpointRecord } = {},
): Promise<void> {
  // One service's firewall failure must not keep the others (or their DNS) on stale backends.
  const errors = new TeardownErrors();
  for (const id of serviceIds) {
    const svc = ctx.state.services.get(id);
    if (!svc) continue;
    const backends = ctx.state.backendsOf(svc);
    if (change.joining) backends.push(change.joining);
    ctx.discovery.serviceChanged(discoveryService(svc, backends));
    if (svc.vip) await errors.attempt(`balance service ${svc.name}`, () => ctx.firewall.setService(firewallService(svc, backends)));
  }
  errors.throwIfAny('service backends not updated');
}

/** Everything the firewall should hold for the services, at start-up or after a lost ruleset. */
export function firewallServices(ctx: Ctx): FirewallService[] {
  return [...ctx.state.services.values()].filter((s) => s.vip).map((s) => firewallService(s, ctx.state.backendsOf(s)));
}

/** Start-up: VIP addresses back on their bridges and every service's names in the DNS. */
export async function restoreServices(ctx: Ctx): Promise<void> {
  for (const svc of ctx.state.services.values()) {
    const net = ctx.state.networks.get(svc.networkId);
    if (!net) continue;
    const rt = runtimeOf(ctx, net);
    // On an out-of-service network the VIP waits for it (reconcile's retryBrokenNetwork puts it back).
    if (svc.vip && rt.error === undefined) {
      try {
        await rt.driver.setServiceAddress?.(toDriverNetwork(net, rt.options), vipAddress(svc)!, true);
      } catch (err) {
        const error = errorMessage(err);
        ctx.logger.error('service could not be restored', { service: svc.name, id: svc.id, error });
        ctx.emit({ type: 'service', action: 'error', id: svc.id, attributes: { name: svc.name, error } });
      }
    }
    ctx.discovery.serviceChanged(discoveryService(svc, ctx.state.backendsOf(svc)));
  }
}

export function vipClaims(svc: ServiceRecord): AddressClaim[] {
  return svc.vip && svc.vipPoolId ? [{ poolId: svc.vipPoolId, address: vipAddress(svc)! }] : [];
}

function vipAddress(svc: ServiceRecord): string | undefined {
  return svc.vip?.split('/')[0];
}

function firewallService(svc: ServiceRecord, backends: readonly EndpointRecord[]): FirewallService {
  return {
    id: svc.id,
    vip: vipAddress(svc)!,
    ports: svc.ports,
    backends: backends.flatMap((ep) => (ep.ipv4Address ? [ep.ipv4Address.split('/')[0]!] : [])),
  };
}

/** The service as the DNS sees it: NAME → the VIP (vip) or the backends (dnsrr); tasks.NAME → the backends. */
function discoveryService(svc: ServiceRecord, backends: readonly EndpointRecord[]): DiscoveryService {
  return {
    id: svc.id,
    networkId: svc.networkId,
    name: svc.name,
    ...(svc.vip ? { vip: svc.vip } : {}),
    backends: backends.map((ep) => ({
      ...(ep.ipv4Address ? { ipv4: ep.ipv4Address } : {}),
      ...(ep.ipv6Address ? { ipv6: ep.ipv6Address } : {}),
    })),
  };
}

/** "80", "80/tcp", "53/udp"; the same port twice counts once (nft refuses a duplicate map key). */
function parsePorts(texts: readonly string[]): ServicePort[] {
  const ports: ServicePort[] = [];
  for (const text of texts) {
    const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text.trim());
    const port = m ? Number(m[1]) : NaN;
    if (!m || port < 1 || port > 65535) throw new InvalidParameterError(`invalid port ${JSON.stringify(text)}: PORT[/tcp|/udp], PORT 1-65535`);
    const protocol = (m[2]?.toLowerCase() as 'tcp' | 'udp' | undefined) ?? 'tcp';
    if (!ports.some((p) => p.port === port && p.protocol === protocol)) ports.push({ port, protocol });
  }
  return ports;
}
