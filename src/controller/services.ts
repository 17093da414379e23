/**
 * Services: a name on one network spread over backend endpoints. Creating one validates everything,
 * allocates the VIPs (vip mode: one from the network's IPv4 pool and one from its IPv6 pool, for each
 * family the network has) and persists record, name claim and address claims in one transaction (in the
 * cluster store for a global network: services-global.ts), then programs the balancing — on the host
 * (VIP on the bridge, the service's slot map in the host's nftables) where the driver carries VIPs, or
 * inside every sandbox on the network where it `balancesInSandboxes` (service-balancing.ts) — and the
 * embedded DNS, undoing all of it if a step fails. Membership lives on the endpoints
 * (EndpointRecord.services), so a backend leaves its services in the same operation that removes it:
 * every connect, disconnect, sandbox removal and reconcile ends in syncBackends, which tells the
 * balancing (vip mode) and the DNS the service's backends as they now are (other hosts' included).
 */
import { ConflictError, errorMessage, ForbiddenError, InvalidParameterError, StoreConflictError, TeardownErrors } from '../errors.js';
import type { FirewallService } from '../firewall/types.js';
import { newId, rfc3339Nano } from '../util/ids.js';
import { serviceBackends } from './cluster.js';
import { runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import type { EndpointRecord, NetworkRecord, ServicePort, ServiceRecord } from './records.js';
import type { AddressClaim } from './repository.js';
import { balancedInSandboxes, balanceNetworkSandboxes } from './service-balancing.js';
import { discoveryService, firewallServicesOf, vipAddresses, vipClaims } from './service-views.js';
import { persistService, serviceRepo } from './services-global.js';
import type { CreateServiceRequest } from './types.js';

export { vipAddresses, vipClaims } from './service-views.js';

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
  const pools4 = net.enableIPv4 ? net.ipam.pools.filter((p) => p.family === 4) : [];
  const pools6 = net.enableIPv6 ? net.ipam.pools.filter((p) => p.family === 6) : [];
  const inSandboxes = rt.driver.balancesInSandboxes === true;
  if (mode === 'vip' && ((!rt.driver.setServiceAddress && !inSandboxes) || pools4.length + pools6.length === 0)) {
    throw new InvalidParameterError(`vip mode needs a bridge or overlay network with IPv4 or IPv6; use --mode dnsrr on ${net.name}`);
  }
  // --vip-subnet picks the pool of its family; the other family takes its first pool.
  const chosen = req.vipSubnet === undefined ? undefined : [...pools4, ...pools6].find((p) => p.subnet === req.vipSubnet);
  if (mode === 'vip' && req.vipSubnet !== undefined && !chosen) throw new InvalidParameterError(`network ${net.name} has no subnet ${req.vipSubnet}`);
  const pool4 = chosen?.family === 4 ? chosen : pools4[0];
  const pool6 = chosen?.family === 6 ? chosen : pools6[0];

  const claims: AddressClaim[] = [];
  const svc: ServiceRecord = { id: newId(), name, networkId: net.id, mode, ports, labels: req.labels ?? {}, created: rfc3339Nano() };
  if (mode === 'vip') {
    for (const pool of [pool4, pool6]) {
      if (!pool) continue;
      const claim = { poolId: pool.id, address: ctx.ipam.requestAddress(pool.id) };
      claims.push(claim);
      const prefixed = `${claim.address}/${pool.subnet.split('/')[1]}`;
      if (pool.family === 4) Object.assign(svc, { vip: prefixed, vipPoolId: pool.id });
      else Object.assign(svc, { vip6: prefixed, vip6PoolId: pool.id });
    }
  }
  try {
    await persistService(ctx, net, svc, claims);
  } catch (err) {
    claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    if (err instanceof StoreConflictError && err.key.includes('/names/')) throw new ConflictError(`service with name ${name} already exists`);
    throw err;
  }
  const undo = new TeardownErrors();
  const addressed: string[] = [];
  const onHost = mode === 'vip' && !inSandboxes;
  let balanced = false;
  try {
    for (const vip of onHost ? vipAddresses(svc) : []) {
      await rt.driver.setServiceAddress!(driverNet, vip, true);
      addressed.push(vip);
    }
    for (const fs of onHost ? firewallServicesOf(svc, []) : []) await ctx.firewall.setService(fs);
    ctx.state.putService(svc);
    balanced = true;
    if (mode === 'vip' && inSandboxes) await balanceNetworkSandboxes(ctx, net.id);
  } catch (err) {
    if (balanced) {
      ctx.state.deleteService(svc.id);
      await undo.attempt('unbalance sandboxes', () => balanceNetworkSandboxes(ctx, net.id));
    }
    for (const fs of onHost ? firewallServicesOf(svc, []) : []) await undo.attempt('remove firewall service', () => ctx.firewall.removeService(fs));
    for (const vip of addressed) await undo.attempt('remove VIP', () => rt.driver.setServiceAddress!(driverNet, vip, false));
    await undo.attempt('forget service', () => serviceRepo(ctx, net).deleteService(svc, claims));
    claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    if (undo.list.length > 0) ctx.logger.error('rollback of service create incomplete', { errors: undo.list });
    throw err;
  }
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
  const unbalanced: FirewallService[] = [];
  const unaddressed: string[] = [];
  const onHost = !balancedInSandboxes(ctx, net);
  try {
    for (const fs of onHost ? firewallServicesOf(svc, []) : []) {
      unbalanced.push(fs);
      await ctx.firewall.removeService(fs);
    }
    for (const vip of onHost ? vipAddresses(svc) : []) {
      unaddressed.push(vip);
      await rt.driver.setServiceAddress?.(driverNet, vip, false);
    }
    // A global service's record goes first of all that is shared: etcd unreachable → 503, nothing changed.
    await serviceRepo(ctx, net).deleteService(svc, claims);
  } catch (err) {
    const undo = new TeardownErrors();
    for (const vip of unaddressed) await undo.attempt('restore VIP', async () => rt.driver.setServiceAddress?.(driverNet, vip, true));
    const now = firewallServicesOf(svc, serviceBackends(ctx, svc));
    for (const fs of now.filter((f) => unbalanced.some((u) => u.vip === f.vip))) {
      await undo.attempt('restore firewall service', () => ctx.firewall.setService(fs));
    }
    if (undo.list.length > 0) ctx.logger.error('rollback of service rm incomplete', { errors: undo.list });
    throw err;
  }
  ctx.state.deleteService(svc.id);
  claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  if (!onHost) {
    await balanceNetworkSandboxes(ctx, net.id).catch((err: unknown) =>
      ctx.logger.error('service not removed from every sandbox; tried again on the next check', { service: svc.name, error: errorMessage(err) }),
    );
  }
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
  const inSandboxes = new Set<string>();
  for (const id of serviceIds) {
    const svc = ctx.state.services.get(id);
    const net = svc && ctx.state.networks.get(svc.networkId);
    if (!svc || !net) continue;
    const backends = serviceBackends(ctx, svc, change.joining);
    ctx.discovery.serviceChanged(discoveryService(svc, backends));
    if (balancedInSandboxes(ctx, net)) inSandboxes.add(net.id);
    else for (const fs of firewallServicesOf(svc, backends)) await errors.attempt(`balance service ${svc.name}`, () => ctx.firewall.setService(fs));
  }
  for (const id of inSandboxes) await errors.attempt('balance services in sandboxes', () => balanceNetworkSandboxes(ctx, id, change));
  errors.throwIfAny('service backends not updated');
}

/** Everything the host's firewall should hold for the services, at start-up or after a lost ruleset. */
export function firewallServices(ctx: Ctx): FirewallService[] {
  return [...ctx.state.services.values()].flatMap((s) => {
    const net = ctx.state.networks.get(s.networkId);
    return net && !balancedInSandboxes(ctx, net) ? firewallServicesOf(s, serviceBackends(ctx, s)) : [];
  });
}

/** Start-up: VIP addresses back on their bridges and every service's names in the DNS. */
export async function restoreServices(ctx: Ctx): Promise<void> {
  for (const svc of ctx.state.services.values()) {
    const net = ctx.state.networks.get(svc.networkId);
    if (!net) continue;
    const rt = runtimeOf(ctx, net);
    // On an out-of-service network the VIP waits for it (reconcile's retryBrokenNetwork puts it back).
    if (rt.error === undefined) {
      try {
        for (const vip of vipAddresses(svc)) await rt.driver.setServiceAddress?.(toDriverNetwork(net, rt.options), vip, true);
      } catch (err) {
        const error = errorMessage(err);
        ctx.logger.error('service could not be restored', { service: svc.name, id: svc.id, error });
        ctx.emit({ type: 'service', action: 'error', id: svc.id, attributes: { name: svc.name, error } });
      }
    }
    ctx.discovery.serviceChanged(discoveryService(svc, serviceBackends(ctx, svc)));
  }
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
