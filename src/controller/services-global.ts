/**
 * Services on global-scope networks (daemons with --cluster-store): the record, its name claim and its VIP
 * address claims live in the cluster store, written in ONE transaction as a global network's are. Every
 * host learns them from the watch (cluster-sync.ts) into its state, so `service ls` / `inspect`,
 * `--service NAME` on a connect, the embedded DNS and the balancing work alike on every host. Backends are
 * endpoints on any host: their shared records carry their services (cluster.ts serviceBackends), and a
 * backend leaves everywhere with its record (disconnect, sandbox rm) or its host's lease. Whenever a global
 * network's remote endpoints or the live hosts change, its services' names and balancing are brought up to
 * date here.
 */
import { errorMessage, StoreConflictError, TeardownErrors } from '../errors.js';
import { clusterOf, isGlobal, serviceBackends, type ClusterRuntime } from './cluster.js';
import { runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import type { NetworkRecord, ServiceRecord } from './records.js';
import { keys, type AddressClaim, type Repository } from './repository.js';
import { balanceNetworkSandboxes } from './service-balancing.js';
import { discoveryService, firewallServicesOf, vipAddresses, vipClaims } from './service-views.js';

/** Where a service of this network is recorded: the cluster store for a global network, else the local store. */
export function serviceRepo(ctx: Ctx, net: NetworkRecord): Repository {
  return isGlobal(net) ? clusterOf(ctx).repo : ctx.repo;
}

/**
 * Stores a new service with its name and VIP claims in one transaction. On a global network a VIP another
 * host took at the same moment (its record has not reached this host yet) is given up for the next free
 * address; `svc` and `claims` are updated in place. A name conflict is thrown as the store's conflict.
 */
export async function persistService(ctx: Ctx, net: NetworkRecord, svc: ServiceRecord, claims: AddressClaim[]): Promise<void> {
  if (!isGlobal(net)) return ctx.repo.createService(svc, claims);
  const repo = clusterOf(ctx).repo;
  for (let attempt = 0; ; attempt++) {
    try {
      return await repo.createService(svc, claims);
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
      const i = claims.findIndex((c) => err.key === keys.address(c.poolId, c.address));
      const pool = i < 0 ? undefined : net.ipam.pools.find((p) => p.id === claims[i]!.poolId);
      if (!pool || attempt >= 64) throw err;
      const lost = claims[i]!;
      const next = ctx.ipam.requestAddress(lost.poolId);
      ctx.ipam.releaseAddress(lost.poolId, lost.address);
      claims[i] = { poolId: lost.poolId, address: next };
      const cidr = `${next}/${pool.subnet.split('/')[1]}`;
      if (pool.family === 6) svc.vip6 = cidr;
      else svc.vip = cidr;
    }
  }
}

/** A service made on another host (the watch): known here at once; its names and balancing follow with the network's sync. */
export function learnService(ctx: Ctx, g: ClusterRuntime, svc: ServiceRecord): void {
  if (ctx.state.services.has(svc.id)) return;
  const net = ctx.state.networks.get(svc.networkId);
  if (!net || !isGlobal(net)) {
    ctx.logger.warn('service of a global network this host does not know; ignored', { service: svc.name, network: svc.networkId });
    return;
  }
  if (ctx.state.serviceByName(svc.name)) {
    ctx.logger.error('global service has the name of a service of this host; ignored here', { service: svc.name, id: svc.id });
    return;
  }
  for (const c of vipClaims(svc)) {
    try {
      ctx.ipam.requestAddress(c.poolId, c.address);
    } catch {
      /* already marked (a claim this host lost to it), or the pool is not reserved here (network out of service) */
    }
  }
  ctx.state.putService(svc);
  g.dirty.add(net.id);
  ctx.emit({ type: 'service', action: 'create', id: svc.id, attributes: { name: svc.name, network: net.name, mode: svc.mode } });
}

/** A service removed on another host (the watch): gone here too, names and balancing with it. */
export async function forgetService(ctx: Ctx, g: ClusterRuntime, id: string): Promise<void> {
  const svc = ctx.state.services.get(id);
  const net = svc && ctx.state.networks.get(svc.networkId);
  if (!svc || !net || !isGlobal(net)) return;
  ctx.state.deleteService(id);
  ctx.discovery.serviceRemoved(id);
  await unbalanceOnHost(ctx, net, svc);
  for (const c of vipClaims(svc)) ctx.ipam.releaseAddress(c.poolId, c.address);
  g.dirty.add(net.id);
  ctx.emit({ type: 'service', action: 'destroy', id: svc.id, attributes: { name: svc.name } });
}

/** The services of a global network removed elsewhere leave with it (their records went before it could be removed). */
export function dropServicesOf(ctx: Ctx, networkId: string): void {
  for (const svc of ctx.state.servicesOfNetwork(networkId)) {
    ctx.state.deleteService(svc.id);
    ctx.discovery.serviceRemoved(svc.id);
  }
}

/**
 * Names and balancing of every service of these global networks, from their backends on every live host:
 * the DNS (NAME, tasks.NAME), the host's firewall where the driver carries VIPs on the host, and every local
 * sandbox on the network where it balances in sandboxes (which also drops services that are gone).
 */
export async function syncGlobalServices(ctx: Ctx, networkIds: readonly string[]): Promise<void> {
  const errors = new TeardownErrors();
  for (const id of networkIds) {
    const net = ctx.state.networks.get(id);
    if (!net || !isGlobal(net)) continue;
    const rt = runtimeOf(ctx, net);
    for (const svc of ctx.state.servicesOfNetwork(id)) {
      const backends = serviceBackends(ctx, svc);
      ctx.discovery.serviceChanged(discoveryService(svc, backends));
      if (!rt.driver.setServiceAddress || rt.error !== undefined || svc.mode !== 'vip') continue;
      for (const vip of vipAddresses(svc)) await errors.attempt(`VIP of ${svc.name}`, () => rt.driver.setServiceAddress!(toDriverNetwork(net, rt.options), vip, true));
      for (const fs of firewallServicesOf(svc, backends)) await errors.attempt(`balance service ${svc.name}`, () => ctx.firewall.setService(fs));
    }
    await errors.attempt(`services of network ${net.name}`, () => balanceNetworkSandboxes(ctx, id));
  }
  if (errors.list.length > 0) {
    ctx.logger.error('services of a global network not fully updated; tried again on the next change or check', { errors: errors.list.map(errorMessage) });
  }
}

/** A service gone from a network whose driver carries VIPs on the host: its firewall service and addresses go. */
async function unbalanceOnHost(ctx: Ctx, net: NetworkRecord, svc: ServiceRecord): Promise<void> {
  const rt = runtimeOf(ctx, net);
  if (!rt.driver.setServiceAddress || svc.mode !== 'vip') return;
  const errors = new TeardownErrors();
  for (const fs of firewallServicesOf(svc, [])) await errors.attempt('remove firewall service', () => ctx.firewall.removeService(fs));
  for (const vip of vipAddresses(svc)) await errors.attempt('remove VIP', () => rt.driver.setServiceAddress!(toDriverNetwork(net, rt.options), vip, false));
  if (errors.list.length > 0) ctx.logger.error('service removed elsewhere not fully removed here', { service: svc.name, errors: errors.list.map(errorMessage) });
}
