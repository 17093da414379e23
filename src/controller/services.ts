/**
 * Services: a name on one network spread over backend endpoints. Creating one validates everything,
 * allocates the VIP (vip mode) from the network's IPv4 pool and persists record, name claim and address
 * claim in one transaction, then programs the kernel (VIP on the bridge), nftables (the service's slot
 * map) and the embedded DNS — undoing all of it if a step fails. Membership lives on the endpoints
 * (EndpointRecord.services), so a backend leaves its services in the same operation that removes it.
 */
import { ConflictError, ForbiddenError, InvalidParameterError, StoreConflictError, TeardownErrors } from '../errors.js';
import type { FirewallService } from '../firewall/types.js';
import { newId, rfc3339Nano } from '../util/ids.js';
import { runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import type { DiscoveryEndpoint } from '../dns/discovery.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord, ServicePort, ServiceRecord } from './records.js';
import type { AddressClaim } from './repository.js';
import { discoveryEndpoint } from './sandbox-dns.js';
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
  const ports = (req.ports ?? []).map(parsePort);
  if (net.predefined || net.configOnly) throw new ForbiddenError(`services need a user-defined network, not ${net.name}`);
  const rt = runtimeOf(ctx, net);
  const driverNet = toDriverNetwork(net, rt.options);
  const pools = net.ipam.pools.filter((p) => p.family === 4);
  if (mode === 'vip' && (!rt.driver.setServiceAddress || !net.enableIPv4 || pools.length === 0)) {
    throw new InvalidParameterError(`vip mode needs a bridge network with IPv4; use --mode dnsrr on ${net.name}`);
  }

  const claims: AddressClaim[] = [];
  if (mode === 'vip') {
    const pool = pools.find((p) => p.subnet === req.vipSubnet) ?? pools[0]!;
    claims.push({ poolId: pool.id, address: ctx.ipam.requestAddress(pool.id) });
  }
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
  registerVip(ctx, svc);
  ctx.emit({ type: 'service', action: 'create', id: svc.id, attributes: { name, network: net.name, mode } });
  return svc;
}

export async function removeService(ctx: Ctx, ref: string): Promise<void> {
  const svc = ctx.state.service(ref);
  const net = ctx.state.networks.get(svc.networkId)!;
  const rt = runtimeOf(ctx, net);
  const backends = ctx.state.backendsOf(svc);
  if (svc.vip) {
    await ctx.firewall.removeService(firewallService(svc, []));
    await rt.driver.setServiceAddress?.(toDriverNetwork(net, rt.options), vipAddress(svc)!, false);
  }
  const claims = vipClaims(svc);
  await ctx.repo.deleteService(svc, claims);
  ctx.state.deleteService(svc.id);
  claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  ctx.discovery.endpointLeft(svc.id);
  // The backends stay connected; only their tasks.<name> / <name> records go.
  for (const ep of backends) refreshBackendNames(ctx, ep);
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
 * Point each service's balancing at its current backends (plus `joining`, minus `leaving`, for changes
 * not yet in the state). dnsrr services have nothing in nftables.
 */
export async function syncBackends(
  ctx: Ctx,
  serviceIds: readonly string[],
  change: { joining?: EndpointRecord; leaving?: EndpointRecord } = {},
): Promise<void> {
  for (const id of serviceIds) {
    const svc = ctx.state.services.get(id);
    if (!svc?.vip) continue;
    const backends = ctx.state.backendsOf(svc).filter((ep) => ep.id !== change.leaving?.id);
    if (change.joining) backends.push(change.joining);
    await ctx.firewall.setService(firewallService(svc, backends));
  }
}

/** DNS names an endpoint carries for its services: tasks.<name> always, <name> itself in dnsrr mode. */
export function serviceAliasesOf(ctx: Ctx, ep: EndpointRecord): string[] {
  const aliases: string[] = [];
  for (const id of ep.services ?? []) {
    const svc = ctx.state.services.get(id);
    if (!svc) continue;
    aliases.push(`tasks.${svc.name}`);
    if (svc.mode === 'dnsrr') aliases.push(svc.name);
  }
  return aliases;
}

/** Everything the firewall should hold for the services, at start-up or after a lost ruleset. */
export function firewallServices(ctx: Ctx): FirewallService[] {
  return [...ctx.state.services.values()].filter((s) => s.vip).map((s) => firewallService(s, ctx.state.backendsOf(s)));
}

/** Start-up: VIP addresses back on their bridges and every service's name in the DNS. */
export async function restoreServices(ctx: Ctx): Promise<void> {
  for (const svc of ctx.state.services.values()) {
    const net = ctx.state.networks.get(svc.networkId);
    if (!net) continue;
    if (svc.vip) {
      const rt = runtimeOf(ctx, net);
      await rt.driver.setServiceAddress?.(toDriverNetwork(net, rt.options), vipAddress(svc)!, true);
    }
    registerVip(ctx, svc);
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

/** The VIP answers to the service's name like an endpoint would (A and PTR). */
function registerVip(ctx: Ctx, svc: ServiceRecord): void {
  if (!svc.vip) return;
  ctx.discovery.endpointJoined({
    id: svc.id, networkId: svc.networkId, sandboxId: `service:${svc.id}`, sandboxName: svc.name, hostname: svc.name,
    shortId: svc.id.slice(0, 12), aliases: [], ipv4: svc.vip,
  });
}

/** An endpoint as the DNS sees it: its own names plus those of the services it serves. */
export function discoveryEndpointOf(ctx: Ctx, sb: SandboxRecord, ep: EndpointRecord): DiscoveryEndpoint {
  return discoveryEndpoint(sb, ep, serviceAliasesOf(ctx, ep));
}

function refreshBackendNames(ctx: Ctx, ep: EndpointRecord): void {
  const sb = ctx.state.sandboxes.get(ep.sandboxId);
  if (sb) ctx.discovery.endpointJoined(discoveryEndpointOf(ctx, sb, ep));
}

function parsePort(text: string): ServicePort {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(text);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new InvalidParameterError(`invalid port ${JSON.stringify(text)}: PORT[/tcp|/udp]`);
  return { port, protocol: (m[2] as 'tcp' | 'udp' | undefined) ?? 'tcp' };
}
