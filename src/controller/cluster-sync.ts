/**
 * Keeping this host in step with the cluster store: the watch events (records of every host, membership)
 * are queued as they arrive and applied in batches under the controller's mutex, so they never race a
 * mutation. A global network made on another host gets driver.createNetwork here (and deleteNetwork when
 * it is removed there); other hosts' endpoints go to the cache, their addresses to the IPAM (this host
 * never hands them out), and every global network whose set of remote endpoints on live hosts changed
 * gets driver.setPeers with the whole list, and the service discovery the same endpoints' names (so the
 * embedded DNS answers them; they go when the endpoint or its host's lease goes), and the services of those
 * networks their backends on every live host (services-global.ts). Services made or removed on other
 * hosts are learnt and forgotten here too. Also on start and periodically (forced).
 */
import type { RemotePeer } from '../drivers/types.js';
import { errorMessage } from '../errors.js';
import type { WatchEvent } from '../store/types.js';
import { addressClaims, isGlobal, liveRemoteEndpoints, type ClusterRuntime } from './cluster.js';
import { runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import { dropNetworkLocally } from './networks.js';
import type { EndpointRecord, NetworkRecord, ServiceRecord } from './records.js';
import { keys } from './repository.js';
import { discoveryNetwork, remoteDiscoveryEndpoint } from './sandbox-dns.js';
import { dropServicesOf, forgetService, learnService, syncGlobalServices } from './services-global.js';

/** Applies what the watches delivered since the last call, then sends changed peer lists to the drivers. */
export async function applyClusterEvents(ctx: Ctx): Promise<void> {
  const g = ctx.global;
  if (!g) return;
  for (const item of g.pending.splice(0)) {
    try {
      if (item.kind === 'record') await applyRecordEvent(ctx, g, item.event);
      else {
        if (item.event.type === 'join') g.hosts.set(item.event.host.id, item.event.host);
        else g.hosts.delete(item.event.id);
        for (const id of g.remote.keys()) g.dirty.add(id);
      }
    } catch (err) {
      ctx.logger.error('a change from the cluster store could not be applied', { error: errorMessage(err) });
    }
  }
  await syncPeers(ctx, false);
}

async function applyRecordEvent(ctx: Ctx, g: ClusterRuntime, event: WatchEvent): Promise<void> {
  const netPrefix = keys.network('');
  const epPrefix = keys.endpoint('');
  const svcPrefix = keys.service('');
  if (event.key.startsWith(netPrefix)) {
    if (event.type === 'put') await learnNetwork(ctx, g, JSON.parse(event.value) as NetworkRecord);
    else await forgetNetwork(ctx, g, event.key.slice(netPrefix.length));
  } else if (event.key.startsWith(epPrefix)) {
    if (event.type === 'put') learnEndpoint(ctx, g, JSON.parse(event.value) as EndpointRecord);
    else forgetEndpoint(ctx, g, event.key.slice(epPrefix.length));
  } else if (event.key.startsWith(svcPrefix)) {
    if (event.type === 'put') learnService(ctx, g, JSON.parse(event.value) as ServiceRecord);
    else await forgetService(ctx, g, event.key.slice(svcPrefix.length));
  }
}

/** A global network made elsewhere: listed here at once, and created in this host's driver. */
async function learnNetwork(ctx: Ctx, g: ClusterRuntime, net: NetworkRecord): Promise<void> {
  if (ctx.state.networks.has(net.id) || !isGlobal(net)) return;
  if (!ctx.drivers.has(net.driver)) {
    ctx.logger.warn('global network of a driver this host does not have; ignored', { network: net.name, driver: net.driver });
    return;
  }
  if (ctx.state.networkByName(net.name)) {
    ctx.logger.error('global network has the name of a network of this host; ignored here', { network: net.name, id: net.id });
    return;
  }
  ctx.state.putNetwork(net);
  const rt = runtimeOf(ctx, net);
  const restored: string[] = [];
  try {
    const taken = remoteClaims(ctx, net);
    for (const pool of net.ipam.pools) {
      ctx.ipam.restorePool(pool, taken.filter((c) => c.poolId === pool.id).map((c) => c.address));
      restored.push(pool.id);
    }
    const program = await rt.driver.createNetwork(toDriverNetwork(net, rt.options));
    net.driverState = program.driverState;
    if (program.firewall) {
      await ctx.firewall.addNetwork(program.firewall);
      rt.firewall = program.firewall;
    }
  } catch (err) {
    rt.error = errorMessage(err);
    ctx.logger.error('global network could not be set up on this host; out of service here', { network: net.name, error: rt.error });
    ctx.emit({ type: 'network', action: 'error', id: net.id, attributes: { name: net.name, type: net.driver, error: rt.error } });
    if (restored.length < net.ipam.pools.length) restored.forEach((id) => ctx.ipam.releasePool(id));
  }
  ctx.discovery.networkCreated(discoveryNetwork(net));
  ctx.emit({ type: 'network', action: 'create', id: net.id, attributes: { name: net.name, type: net.driver } });
  g.dirty.add(net.id);
  await ctx.repo.cacheGlobalNetwork(net).catch((err: unknown) => ctx.logger.error('global network not cached locally', { network: net.name, error: err }));
}

/** A global network removed elsewhere: gone here too (kept while this host still has endpoints on it). */
async function forgetNetwork(ctx: Ctx, g: ClusterRuntime, id: string): Promise<void> {
  const net = ctx.state.networks.get(id);
  if (!net || !isGlobal(net)) return;
  if (ctx.state.endpointsOfNetwork(id).length > 0) {
    ctx.logger.warn('global network was removed from the cluster store while this host has endpoints on it; kept here', { network: net.name });
    return;
  }
  dropServicesOf(ctx, id);
  await dropNetworkLocally(ctx, net);
  g.remote.delete(id);
  g.sentPeers.delete(id);
  g.sentNames.delete(id);
  await ctx.repo.uncacheGlobalNetwork(id).catch((err: unknown) => ctx.logger.error('cached global network not removed', { network: net.name, error: err }));
}

function learnEndpoint(ctx: Ctx, g: ClusterRuntime, ep: EndpointRecord): void {
  if (ep.hostId === g.deps.hostId) return;
  let map = g.remote.get(ep.networkId);
  if (!map) g.remote.set(ep.networkId, (map = new Map()));
  const known = map.has(ep.id);
  map.set(ep.id, ep);
  g.dirty.add(ep.networkId);
  const net = ctx.state.networks.get(ep.networkId);
  if (known || !net) return;
  for (const c of addressClaims(net, ep)) {
    try {
      ctx.ipam.requestAddress(c.poolId, c.address);
    } catch {
      /* already marked (restored at start), or the pool is not reserved here (network out of service) */
    }
  }
}

function forgetEndpoint(ctx: Ctx, g: ClusterRuntime, id: string): void {
  for (const [networkId, map] of g.remote) {
    const ep = map.get(id);
    if (!ep) continue;
    map.delete(id);
    g.dirty.add(networkId);
    const net = ctx.state.networks.get(networkId);
    if (net) for (const c of addressClaims(net, ep)) ctx.ipam.releaseAddress(c.poolId, c.address);
    return;
  }
}

/** Address claims of the other hosts' endpoints on a network (the IPAM keeps them taken). */
export function remoteClaims(ctx: Ctx, net: NetworkRecord): Array<{ poolId: string; address: string }> {
  return [...(ctx.global?.remote.get(net.id)?.values() ?? [])].flatMap((ep) => addressClaims(net, ep));
}

/** The endpoints of a global network on OTHER hosts that are registered now, as the driver programs them. */
export function peersOf(g: ClusterRuntime, networkId: string): RemotePeer[] {
  const peers: RemotePeer[] = [];
  for (const { ep, advertiseAddr } of liveRemoteEndpoints(g, networkId)) {
    const ips = [ep.ipv4Address, ep.ipv6Address].flatMap((cidr) => (cidr ? [cidr.split('/')[0]!] : []));
    peers.push({ mac: ep.macAddress, ips, vtep: ep.vtep ?? advertiseAddr });
  }
  return peers.sort((a, b) => a.mac.localeCompare(b.mac));
}

/**
 * Sends every global network's peers to its driver: with `force` all of them (start, periodic check),
 * else only networks whose list changed. A failed call is tried again on the next one.
 */
export async function syncPeers(ctx: Ctx, force: boolean): Promise<void> {
  const g = ctx.global;
  if (!g) return;
  syncRemoteNames(ctx, g, force);
  // Services follow their backends on other hosts (a record, a host's lease): names and balancing.
  await syncGlobalServices(ctx, [...ctx.state.networks.values()].filter((n) => isGlobal(n) && (force || g.dirty.has(n.id))).map((n) => n.id));
  const failed: string[] = [];
  for (const net of ctx.state.networks.values()) {
    if (!isGlobal(net) || (!force && !g.dirty.has(net.id))) continue;
    const rt = ctx.networks.get(net.id);
    if (!rt?.driver.setPeers || rt.error !== undefined) continue;
    const peers = peersOf(g, net.id);
    const text = JSON.stringify(peers);
    if (!force && g.sentPeers.get(net.id) === text) continue;
    try {
      await rt.driver.setPeers(toDriverNetwork(net, rt.options), peers);
      g.sentPeers.set(net.id, text);
    } catch (err) {
      failed.push(net.id);
      ctx.logger.error('peers of a global network not programmed; tried again on the next change or check', { network: net.name, error: errorMessage(err) });
    }
  }
  g.dirty.clear();
  failed.forEach((id) => g.dirty.add(id));
}

/**
 * Gives the service discovery the names of the live remote endpoints of every changed global network
 * (all with `force`): new or changed ones join, those gone (disconnected, host's lease expired) leave.
 * The same path as local endpoints; one that fails is tried again with the next change or check.
 */
function syncRemoteNames(ctx: Ctx, g: ClusterRuntime, force: boolean): void {
  for (const id of g.sentNames.keys()) if (!ctx.state.networks.has(id)) g.sentNames.delete(id);
  for (const net of ctx.state.networks.values()) {
    if (!isGlobal(net) || (!force && !g.dirty.has(net.id))) continue;
    let sent = g.sentNames.get(net.id);
    if (!sent) g.sentNames.set(net.id, (sent = new Map()));
    const live = new Set<string>();
    for (const { ep } of liveRemoteEndpoints(g, net.id)) {
      live.add(ep.id);
      const spec = remoteDiscoveryEndpoint(ep);
      const text = JSON.stringify(spec);
      if (sent.get(ep.id) === text) continue;
      try {
        ctx.discovery.endpointJoined(spec);
        sent.set(ep.id, text);
      } catch (err) {
        sent.delete(ep.id);
        ctx.logger.error('name of a remote endpoint not registered; tried again on the next change or check', { network: net.name, endpoint: ep.id, error: errorMessage(err) });
      }
    }
    for (const id of [...sent.keys()]) {
      if (live.has(id)) continue;
      ctx.discovery.endpointLeft(id);
      sent.delete(id);
    }
  }
}

/** Docker's `Peers` of a global network: the live hosts with endpoints on it (this one included). */
export function networkPeers(ctx: Ctx, net: NetworkRecord): Array<{ name: string; ip: string }> | undefined {
  const g = ctx.global;
  if (!g || !isGlobal(net)) return undefined;
  const hosts = new Map<string, string>();
  if (ctx.state.endpointsOfNetwork(net.id).length > 0) hosts.set(g.deps.hostId, g.deps.advertiseAddr);
  for (const ep of g.remote.get(net.id)?.values() ?? []) {
    const host = ep.hostId === undefined ? undefined : g.hosts.get(ep.hostId);
    if (host) hosts.set(host.id, host.advertiseAddr);
  }
  return [...hosts].sort(([a], [b]) => a.localeCompare(b)).map(([name, ip]) => ({ name, ip }));
}
