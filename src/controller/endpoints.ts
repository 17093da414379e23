/**
 * Connect and disconnect: an endpoint is an address (or two) from IPAM plus the driver's interface in
 * the sandbox. Order on connect: allocate → driver join → sandbox routes → persist (endpoint and its
 * address claims in one transaction); any failure undoes the earlier steps. A crash before the
 * persist leaves only cnm-named links, which the next start's reconcile removes.
 */
import {
  ForbiddenError,
  InvalidParameterError,
  StoreConflictError,
  TeardownErrors,
  AddressInUseError,
  errorMessage,
} from '../errors.js';
import type { JoinResult } from '../drivers/types.js';
import type { Pool } from '../ipam/types.js';
import { ipFamilyOf, subnetContainsIp } from '../util/ip.js';
import { newId, randomMac, rfc3339Nano } from '../util/ids.js';
import { setAdoptedDefaultRoute } from './adopted-netns.js';
import { addressClaims, isGlobal, publishEndpoint, withdrawEndpoint } from './cluster.js';
import { runtimeOf, toDriverEndpoint, toDriverNetwork, toDriverSandbox, type Ctx } from './context.js';
import { closePorts, openPorts } from './ports.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import type { AddressClaim } from './repository.js';
import { discoveryEndpoint, leaveEmbeddedDns, resolverModeFor } from './sandbox-dns.js';
import { balanceSandbox } from './service-balancing.js';
import { resolveMembership, syncBackends } from './services.js';
import type { EndpointSettingsRequest } from './types.js';

export async function connect(
  ctx: Ctx,
  net: NetworkRecord,
  sb: SandboxRecord,
  req: EndpointSettingsRequest,
  opts: { creating?: boolean; completesCreate?: boolean; outboundGateway?: boolean } = {},
): Promise<EndpointRecord> {
  checkConnectAllowed(ctx, net, sb, opts.creating ?? false);
  const rt = runtimeOf(ctx, net);
  const epOptions = rt.driver.parseEndpointOptions(req.driverOpts ?? {});
  const typed = epOptions as { ifName?: string; macAddress?: string };
  const macAddress = normaliseMac(req.macAddress) ?? typed.macAddress ?? randomMac();
  const ifName = typed.ifName ?? nextIfName(ctx, sb, ifPrefixOf(rt.options));
  if (ctx.state.endpointsOfSandbox(sb.id).some((e) => e.ifName === ifName)) {
    throw new ForbiddenError(`interface name ${ifName} is already used in sandbox ${sb.name}`);
  }
  const aliases = (req.aliases ?? []).filter((a, i, all) => a.length > 0 && all.indexOf(a) === i);
  const services = resolveMembership(ctx, net, req.services);

  const claims = rt.driver.needsIpam ? allocateAddresses(ctx, net, req) : [];
  const release = () => claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  const ep: EndpointRecord = {
    id: newId(),
    // Docker names an endpoint after its container, the gateway network's after the sandbox's ID.
    name: opts.outboundGateway ? gatewayEndpointName(sb) : sb.name,
    networkId: net.id,
    sandboxId: sb.id,
    macAddress,
    ipv4Address: withPrefix(net, claims, 4),
    ipv6Address: withPrefix(net, claims, 6),
    staticIpv4: Boolean(req.ipv4Address),
    staticIpv6: Boolean(req.ipv6Address),
    aliases,
    gwPriority: req.gwPriority ?? 0,
    driverOpts: req.driverOpts ?? {},
    ifName,
    driverState: {},
    ...(services.length > 0 ? { services } : {}),
    ...(opts.outboundGateway ? { outboundGateway: true as const } : {}),
    created: rfc3339Nano(),
  };

  // A global network's endpoint is claimed cluster-wide first: its final address is known before the join.
  const global = isGlobal(net);
  if (global) await publishEndpoint(ctx, net, ep, claims).catch((err: unknown) => {
    release();
    throw err;
  });
  const driverNet = toDriverNetwork(net, rt.options);
  const existing = ctx.state.endpointsOfSandbox(sb.id);
  const resolverBefore = resolverModeFor(ctx, sb, existing);
  const resolverAfter = resolverModeFor(ctx, sb, [...existing, ep]);
  const stickToEmbeddedDns = resolverAfter === 'embedded' && !sb.embeddedDns && !sb.hostNetwork;
  let joined = false;
  let registered = false;
  let balanced = false;
  let selfBalanced = false;
  try {
    const result = await rt.driver.join(driverNet, toDriverEndpoint(ep, epOptions), toDriverSandbox(sb));
    joined = true;
    Object.assign(ep, joinOutcome(result));
    await programRoutes(ctx, sb, [...existing, ep]);
    ctx.discovery.endpointJoined(discoveryEndpoint(sb, ep));
    registered = true;
    balanced = services.length > 0;
    await syncBackends(ctx, services, { joining: ep });
    // The sandbox balances the network's VIPs itself where the driver says so (a no-op elsewhere).
    selfBalanced = true;
    await balanceSandbox(ctx, sb, [...existing, ep], { joining: ep });
    // Idempotent when already attached; before the persist, so a namespace we cannot serve fails the connect.
    if (resolverAfter === 'embedded') await ctx.discovery.attach(sb.id, sb.netnsPath);
    await persistEndpoint(ctx, ep, global ? [] : claims, sandboxAfter(sb, stickToEmbeddedDns, opts.completesCreate ?? false));
  } catch (err) {
    const undo = new TeardownErrors();
    if (global) await undo.attempt('withdraw from the cluster store', () => withdrawEndpoint(ctx, net, ep));
    if (balanced) await undo.attempt('restore service backends', () => syncBackends(ctx, services));
    if (selfBalanced) await undo.attempt('restore sandbox balancing', () => balanceSandbox(ctx, sb, existing));
    if (registered) ctx.discovery.endpointLeft(ep.id);
    if (resolverBefore !== resolverAfter) await undo.attempt('stop embedded DNS', () => ctx.discovery.detach(sb.id));
    if (joined) {
      await undo.attempt('leave', () => rt.driver.leave(driverNet, toDriverEndpoint(ep, epOptions), toDriverSandbox(sb)));
      await undo.attempt('restore routes', () => programRoutes(ctx, sb, ctx.state.endpointsOfSandbox(sb.id)));
    }
    release();
    if (undo.list.length > 0) ctx.logger.error('rollback of connect incomplete', { errors: undo.list });
    throw err;
  }
  ctx.state.putEndpoint(ep);
  if (stickToEmbeddedDns) sb.embeddedDns = true;
  if (opts.completesCreate) delete sb.creating;
  // Reconnected to the network its ports lead to: they open again (at create, the sandbox opens them).
  if (!opts.creating && sb.portsNetworkId === net.id) {
    await openPorts(ctx, sb).catch((err: unknown) => ctx.logger.error('published ports not reopened', { sandbox: sb.id, error: err }));
  }
  await ctx.files.writeHosts(sb, ctx.state.endpointsOfSandbox(sb.id));
  // A sandbox being created got the right resolv.conf up front.
  if (resolverBefore !== resolverAfter && !opts.creating) await ctx.files.writeResolvConf(sb, resolverAfter);
  ctx.emit({ type: 'network', action: 'connect', id: net.id, attributes: { container: sb.id, name: net.name, type: net.driver } });
  return ep;
}

/** What an endpoint record keeps of its driver's join (connect and a rejoin at start-up alike). */
export function joinOutcome(result: JoinResult): Pick<EndpointRecord, 'driverState' | 'gatewayIpv4' | 'gatewayIpv6' | 'requiresGateway' | 'hostInterface'> {
  return {
    driverState: result.driverState,
    gatewayIpv4: result.gatewayIpv4,
    gatewayIpv6: result.gatewayIpv6,
    ...(result.requiresDefaultGateway ? { requiresGateway: true as const } : {}),
    ...(result.hostInterface ? { hostInterface: { ...result.hostInterface } } : {}),
  };
}

/** Docker's name of a sandbox's endpoint on the gateway network: `gateway_` and the first 12 hex of its ID. */
export function gatewayEndpointName(sb: Pick<SandboxRecord, 'id'>): string {
  return `gateway_${sb.id.slice(0, 12)}`;
}

/** The sandbox's record as the endpoint's transaction must store it, or undefined when it is unchanged. */
function sandboxAfter(sb: SandboxRecord, stickToEmbeddedDns: boolean, completesCreate: boolean): SandboxRecord | undefined {
  if (!stickToEmbeddedDns && !completesCreate) return undefined;
  const { creating: _done, ...rest } = sb;
  return { ...(completesCreate ? rest : sb), ...(stickToEmbeddedDns ? { embeddedDns: true } : {}) };
}

async function persistEndpoint(ctx: Ctx, ep: EndpointRecord, claims: AddressClaim[], sandbox?: SandboxRecord): Promise<void> {
  try {
    await ctx.repo.createEndpoint(ep, claims, sandbox);
  } catch (err) {
    if (err instanceof StoreConflictError) throw new AddressInUseError('Address already in use');
    throw err;
  }
}

function checkConnectAllowed(ctx: Ctx, net: NetworkRecord, sb: SandboxRecord, creating: boolean): void {
  if (net.configOnly) throw new ForbiddenError(`cannot connect to config-only network ${net.name}`);
  if (ctx.state.endpointOf(net.id, sb.id)) {
    throw new ForbiddenError(`endpoint with name ${sb.name} already exists in network ${net.name}`);
  }
  const others = ctx.state.endpointsOfSandbox(sb.id);
  // The host network is chosen when a sandbox is created (it then shares the daemon's namespace) and
  // never combined with others, as in Docker.
  const hostAtCreate = creating && sb.hostNetwork && net.driver === 'host';
  if (!hostAtCreate && (sb.hostNetwork || net.driver === 'host')) {
    throw new ForbiddenError('container sharing the host network namespace cannot be connected to or disconnected from networks');
  }
  const onNone = others.some((e) => ctx.state.networks.get(e.networkId)?.driver === 'null');
  if ((net.driver === 'null' && others.length > 0) || onNone) {
    throw new ForbiddenError(`container ${sb.name} cannot be on the "none" network and another network at once`);
  }
}

/** Static addresses exactly as asked; otherwise the next free address of the first pool with room. */
function allocateAddresses(ctx: Ctx, net: NetworkRecord, req: EndpointSettingsRequest): AddressClaim[] {
  const claims: AddressClaim[] = [];
  try {
    for (const family of [4, 6] as const) {
      const enabled = family === 4 ? net.enableIPv4 : net.enableIPv6;
      const wanted = family === 4 ? req.ipv4Address : req.ipv6Address;
      const pools = net.ipam.pools.filter((p) => p.family === family);
      if (wanted !== undefined && wanted !== '') {
        if (ipFamilyOf(wanted) !== family) throw new InvalidParameterError(`invalid IPv${family} address ${JSON.stringify(wanted)}`);
        if (!enabled || pools.length === 0) {
          throw new InvalidParameterError(`network ${net.name} has no IPv${family} subnet for address ${wanted}`);
        }
        const pool = pools.find((p) => subnetContainsIp(p.subnet, wanted));
        if (!pool) throw new InvalidParameterError(`no configured subnet or ip-range contain the IP address ${wanted}`);
        claims.push({ poolId: pool.id, address: ctx.ipam.requestAddress(pool.id, wanted) });
      } else if (enabled && pools.length > 0) {
        claims.push(allocateFromAny(ctx, pools));
      }
    }
  } catch (err) {
    claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
    throw err;
  }
  return claims;
}

function allocateFromAny(ctx: Ctx, pools: Pool[]): AddressClaim {
  let last: unknown;
  for (const pool of pools) {
    try {
      return { poolId: pool.id, address: ctx.ipam.requestAddress(pool.id) };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function withPrefix(net: NetworkRecord, claims: AddressClaim[], family: 4 | 6): string | undefined {
  for (const c of claims) {
    const pool = net.ipam.pools.find((p) => p.id === c.poolId);
    if (pool && pool.family === family) return `${c.address}/${pool.subnet.split('/')[1]}`;
  }
  return undefined;
}

/** Address claims of an endpoint record (its addresses in the network's pools). */
export const claimsOf: (net: NetworkRecord, ep: EndpointRecord) => AddressClaim[] = addressClaims;

function ifPrefixOf(options: unknown): string {
  const prefix = (options as { containerIfacePrefix?: string } | undefined)?.containerIfacePrefix;
  return prefix ?? 'eth';
}

function nextIfName(ctx: Ctx, sb: SandboxRecord, prefix: string): string {
  const used = new Set(ctx.state.endpointsOfSandbox(sb.id).map((e) => e.ifName));
  for (let i = 0; ; i++) if (!used.has(`${prefix}${i}`)) return `${prefix}${i}`;
}

function normaliseMac(mac: string | undefined): string | undefined {
  if (mac === undefined || mac === '') return undefined;
  const m = mac.toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) throw new InvalidParameterError(`invalid MAC address ${JSON.stringify(mac)}`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw new InvalidParameterError(`invalid MAC address ${mac}: multicast`);
  return m;
}

export async function disconnect(ctx: Ctx, net: NetworkRecord, sb: SandboxRecord, force: boolean): Promise<void> {
  const ep = ctx.state.endpointOf(net.id, sb.id);
  if (!ep) throw new ForbiddenError(`container ${sb.name} is not connected to network ${net.name}`);
  if (sb.hostNetwork) {
    throw new ForbiddenError('container sharing the host network namespace cannot be connected to or disconnected from networks');
  }
  await removeEndpoint(ctx, net, sb, ep, force);
}

/** Kernel first, record last; with `force`, kernel failures are logged and the record goes anyway. */
export async function removeEndpoint(
  ctx: Ctx,
  net: NetworkRecord,
  sb: SandboxRecord,
  ep: EndpointRecord,
  force: boolean,
): Promise<void> {
  const rt = runtimeOf(ctx, net);
  const remaining = ctx.state.endpointsOfSandbox(sb.id).filter((e) => e.id !== ep.id);
  const resolverBefore = resolverModeFor(ctx, sb, [...remaining, ep]);
  // The shared record first: while the cluster store cannot be reached nothing here is torn down (503).
  const global = isGlobal(net);
  if (global) await withdrawEndpoint(ctx, net, ep);
  try {
    // Its ports close first: nothing may be translated to an address that is about to be free.
    if (sb.portsNetworkId === net.id) await closePorts(ctx, sb, ep);
    const epOptions = rt.driver.parseEndpointOptions(ep.driverOpts);
    await rt.driver.leave(toDriverNetwork(net, rt.options), toDriverEndpoint(ep, epOptions), toDriverSandbox(sb));
    await programRoutes(ctx, sb, remaining);
  } catch (err) {
    if (!force) throw err;
    ctx.logger.warn('forced disconnect: kernel cleanup failed', { endpoint: ep.id, error: err });
  }
  const claims = claimsOf(net, ep);
  await ctx.repo.deleteEndpoint(ep, global ? [] : claims);
  ctx.state.deleteEndpoint(ep.id);
  ctx.discovery.endpointLeft(ep.id);
  // The endpoint is gone from the state, so its services now balance over the others only.
  await syncBackends(ctx, ep.services ?? []).catch((err: unknown) =>
    ctx.logger.error('service backends not updated after disconnect', { endpoint: ep.id, error: err }),
  );
  // The sandbox stops balancing the network's VIPs (an adopted namespace outlives its sandbox).
  await balanceSandbox(ctx, sb, remaining).catch((err: unknown) =>
    ctx.logger.error('service balancing not removed from the sandbox', { sandbox: sb.name, error: errorMessage(err) }),
  );
  claims.forEach((c) => ctx.ipam.releaseAddress(c.poolId, c.address));
  await ctx.files.writeHosts(sb, remaining);
  if (resolverBefore === 'embedded' && resolverModeFor(ctx, sb, remaining) === 'host') await leaveEmbeddedDns(ctx, sb);
  ctx.emit({ type: 'network', action: 'disconnect', id: net.id, attributes: { container: sb.id, name: net.name, type: net.driver } });
}

/**
 * The sandbox's default routes: the gateway of the endpoint with the highest GwPriority, ties broken
 * by network name (Docker's rule). Skips the kernel when nothing changed.
 */
export async function programRoutes(ctx: Ctx, sb: SandboxRecord, endpoints: EndpointRecord[], force = false): Promise<void> {
  if (sb.hostNetwork) return;
  const current = ctx.routes.get(sb.id) ?? {};
  const want = { v4: pickGateway(ctx, endpoints, 4), v6: pickGateway(ctx, endpoints, 6) };
  for (const family of [4, 6] as const) {
    const key = family === 4 ? 'v4' : 'v6';
    if (!force && current[key] === want[key]) continue;
    const gw = want[key];
    if (sb.adopted && sb.adoptedRoutes) await setAdoptedDefaultRoute(ctx.kernel, sb, family, gw);
    else if (gw) await ctx.kernel.routeReplace(sb.netnsPath, { dst: 'default', via: gw, family });
    else await ctx.kernel.routeDel(sb.netnsPath, { dst: 'default', family });
  }
  ctx.routes.set(sb.id, want);
}

function pickGateway(ctx: Ctx, endpoints: EndpointRecord[], family: 4 | 6): string | undefined {
  const name = (e: EndpointRecord) => ctx.state.networks.get(e.networkId)?.name ?? '';
  const candidates = endpoints
    .filter((e) => (family === 4 ? e.gatewayIpv4 : e.gatewayIpv6))
    .sort((a, b) => b.gwPriority - a.gwPriority || name(a).localeCompare(name(b)));
  const best = candidates[0];
  return best ? (family === 4 ? best.gatewayIpv4 : best.gatewayIpv6) : undefined;
}
