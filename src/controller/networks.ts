/**
 * Network lifecycle: validate everything, reserve pools, persist, then program the kernel; undo in
 * reverse order when any step fails. Deletion tears the kernel down first and forgets the record last,
 * so a crash in between is finished by the next start's reconcile instead of leaking.
 */
import { isIP } from 'node:net';
import {
  ConflictError,
  ForbiddenError,
  InvalidParameterError,
  StoreConflictError,
  TeardownErrors,
} from '../errors.js';
import { goParseBool } from '../drivers/option-schema.js';
import { GLOBAL_V4_POOLS } from '../ipam/default-pools.js';
import type { Pool, PoolRequest } from '../ipam/types.js';
import { newId, rfc3339Nano } from '../util/ids.js';
import { activeRemoteEndpointsOf, clusterOf, deleteGlobalNetwork, givenClusterId, isGlobal, persistGlobalNetwork, type ClusterIdSpec } from './cluster.js';
import { driverOf, runtimeOf, toDriverNetwork, type Ctx } from './context.js';
import type { NetworkRecord } from './records.js';
import { discoveryNetwork } from './sandbox-dns.js';
import type { CreateNetworkRequest, IpamConfigRequest } from './types.js';

/** Names Docker reserves for its predefined networks. */
export const PREDEFINED_NAMES = ['bridge', 'host', 'none', 'default'];
/** Drivers of which only one network may exist (the predefined one). */
const SINGLETON_DRIVERS = new Set(['host', 'null']);
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface CreateOptions {
  /** Creating a predefined network at start-up. */
  predefined?: boolean;
}

export async function createNetwork(ctx: Ctx, req: CreateNetworkRequest, opts: CreateOptions = {}): Promise<NetworkRecord> {
  const name = req.name ?? '';
  if (!NAME_RE.test(name)) {
    throw new InvalidParameterError(`invalid network name ${JSON.stringify(name)}: must match ${NAME_RE.source}`);
  }
  if (!opts.predefined && PREDEFINED_NAMES.includes(name)) {
    throw new ForbiddenError(`${name} is a pre-defined network and cannot be created`);
  }
  if (ctx.state.networkByName(name)) throw new ConflictError(`network with name ${name} already exists`);

  const driverName = req.driver || 'bridge';
  if (req.forHandoff && !ctx.drivers.get(driverName)?.joinForHandoff) {
    // Not the Engine API's "plugin not found": the name was cnm's own driver option.
    const able = [...ctx.drivers.values()].filter((d) => d.joinForHandoff).map((d) => d.name);
    throw new InvalidParameterError(`cnm has no driver "${driverName}" that can serve another runtime's containers (there: ${able.join(', ')})`);
  }
  const driver = driverOf(ctx, driverName);
  if (!opts.predefined && SINGLETON_DRIVERS.has(driverName)) {
    throw new ForbiddenError(`only one instance of "${driverName}" network is allowed`);
  }
  const id = req.id ?? newId();
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidParameterError(`invalid network ID ${JSON.stringify(id)}: 64 lowercase hex digits`);
  if (ctx.state.networks.has(id)) throw new ConflictError(`network with ID ${id} already exists`);
  const scope = req.scope || driver.scope;
  if (scope !== driver.scope) {
    throw new InvalidParameterError(`driver ${driverName} does not support ${scope} scope networks`);
  }
  // Global-scope networks live in the cluster store: none, no such network.
  if (scope === 'global') clusterOf(ctx);

  const source = configSource(ctx, req);
  const rawOptions = source.options ?? {};
  let options = driver.parseNetworkOptions(rawOptions);
  const givenId = driver.clusterId ? givenClusterId(driver.clusterId, rawOptions) : undefined;
  // As Docker: the EnableIPv4/EnableIPv6 fields win over the options of the same meaning, which are only
  // read (with strconv.ParseBool) when the field is not set.
  const enableIPv6 = req.enableIPv6 ?? familyOption(rawOptions, 'com.docker.network.enable_ipv6') ?? false;
  const enableIPv4 = req.enableIPv4 ?? familyOption(rawOptions, 'com.docker.network.enable_ipv4') ?? true;
  if (!enableIPv4 && !enableIPv6 && driver.needsIpam) {
    throw new InvalidParameterError('a network needs IPv4, IPv6 or both enabled');
  }
  const ipamDriver = source.ipam?.driver || 'default';
  if (ipamDriver !== ctx.ipam.name && ipamDriver !== 'default') {
    throw new InvalidParameterError(`IPAM driver ${JSON.stringify(ipamDriver)} is not supported`);
  }

  const record: NetworkRecord = {
    id,
    name,
    driver: driverName,
    scope,
    created: rfc3339Nano(),
    internal: req.internal ?? false,
    attachable: req.attachable ?? false,
    ingress: req.ingress ?? false,
    configOnly: req.configOnly ?? false,
    configFrom: req.configFrom || undefined,
    enableIPv4,
    enableIPv6,
    ipam: { driver: 'default', options: source.ipam?.options ?? {}, pools: [] },
    options: rawOptions,
    labels: req.labels ?? {},
    predefined: opts.predefined ?? false,
    driverState: {},
  };

  const configs = source.ipam?.configs ?? [];
  if (record.configOnly) {
    // A config-only network holds configuration for others; it reserves nothing and touches no kernel.
    record.ipam.pools = configs.map((c, i) => configOnlyPool(c, i));
    record.options = (await persistNew(ctx, record, [], () => undefined, driver.clusterId, givenId)).options;
    return record;
  }

  const pools = driver.needsIpam ? await reservePools(ctx, configs, enableIPv4, enableIPv6, scope === 'global') : [];
  record.ipam.pools = pools;
  const release = () => pools.forEach((p) => ctx.ipam.releasePool(p.id));
  // The driver checks the network as it will be created: with the cluster-wide number the controller
  // picks for a global network (each candidate, in the loop that claims one) in its options.
  const validate = (candidate: NetworkRecord) => {
    const others = [...ctx.state.networks.values()]
      .filter((n) => n.driver === driverName && !n.configOnly)
      .map((n) => toDriverNetwork(n, runtimeOf(ctx, n).options));
    driver.validateNetwork(toDriverNetwork(candidate, driver.parseNetworkOptions(candidate.options)), others);
  };
  if (!isGlobal(record)) {
    try {
      validate(record);
    } catch (err) {
      release();
      throw err;
    }
  }

  const stored = await persistNew(ctx, record, pools, validate, driver.clusterId, givenId);
  if (stored !== record) {
    // The cluster-wide number the controller allocated is in the options now: the driver reads it there.
    record.options = stored.options;
    options = driver.parseNetworkOptions(record.options);
  }
  const createdNet = toDriverNetwork(record, options);
  ctx.networks.set(record.id, { driver, options });
  try {
    const program = await driver.createNetwork(createdNet);
    if (Object.keys(program.driverState).length > 0) {
      // What the driver found (a bridge it created or adopted) decides what rm may delete: on record
      // (a global network's is this host's own: kept in memory, never in the shared record).
      record.driverState = program.driverState;
      if (!isGlobal(record)) await ctx.repo.updateNetwork(record);
    }
    if (program.firewall) {
      await ctx.firewall.addNetwork(program.firewall);
      ctx.networks.get(record.id)!.firewall = program.firewall;
    }
  } catch (err) {
    const undo = new TeardownErrors();
    await undo.attempt('delete network in driver', () => driver.deleteNetwork(createdNet));
    const fw = ctx.networks.get(record.id)?.firewall;
    if (fw) await undo.attempt('remove firewall rules', () => ctx.firewall.removeNetwork(fw));
    await undo.attempt('forget network', () => (isGlobal(record) ? deleteGlobalNetwork(ctx, record) : ctx.repo.deleteNetwork(record)));
    if (isGlobal(record)) await undo.attempt('forget cached copy', () => ctx.repo.uncacheGlobalNetwork(record.id));
    ctx.state.deleteNetwork(record.id);
    ctx.networks.delete(record.id);
    release();
    if (undo.list.length > 0) ctx.logger.error('rollback of network create incomplete', { errors: undo.list });
    throw err;
  }
  ctx.discovery.networkCreated(discoveryNetwork(record));
  ctx.emit({ type: 'network', action: 'create', id: record.id, attributes: { name, type: driverName } });
  return record;
}

/** The record with its claims in one transaction (of the cluster store for a global network); returns it as stored. */
async function persistNew(
  ctx: Ctx,
  record: NetworkRecord,
  pools: Pool[],
  validate: (candidate: NetworkRecord) => void,
  spec?: ClusterIdSpec,
  givenId?: number,
): Promise<NetworkRecord> {
  let stored = record;
  try {
    if (isGlobal(record)) {
      stored = await persistGlobalNetwork(ctx, record, spec, givenId, validate);
      await ctx.repo.cacheGlobalNetwork(stored).catch((err: unknown) => ctx.logger.error('global network not cached locally', { network: record.name, error: err }));
    } else await ctx.repo.createNetwork(record);
  } catch (err) {
    pools.forEach((p) => ctx.ipam.releasePool(p.id));
    if (err instanceof StoreConflictError) {
      if (err.key.includes('/names/')) throw new ConflictError(`network with name ${record.name} already exists`);
      throw new ForbiddenError('Pool overlaps with other one on this address space');
    }
    throw err;
  }
  ctx.state.putNetwork(record);
  return stored;
}

/** --config-from: options and IPAM come from a config-only network, and may not be given again. */
function configSource(ctx: Ctx, req: CreateNetworkRequest): Pick<CreateNetworkRequest, 'options' | 'ipam'> {
  if (!req.configFrom) return req;
  if (req.configOnly) throw new InvalidParameterError('a config-only network cannot take its configuration from another');
  const from = ctx.state.network(req.configFrom);
  if (!from.configOnly) throw new ForbiddenError(`network ${from.name} is not a config-only network`);
  if ((req.ipam?.configs?.length ?? 0) > 0 || Object.keys(req.options ?? {}).length > 0) {
    throw new ForbiddenError('network configuration is not allowed with --config-from: it comes from the config-only network');
  }
  return {
    options: from.options,
    ipam: {
      driver: from.ipam.driver,
      options: from.ipam.options,
      configs: from.ipam.pools.map((p) => ({
        subnet: p.subnet || undefined,
        ipRange: p.ipRange,
        gateway: p.gateway || undefined,
        auxAddresses: p.auxAddresses,
      })),
    },
  };
}

function configOnlyPool(c: IpamConfigRequest, i: number): Pool {
  const family = familyOfConfig(c) ?? 4;
  return {
    id: `config-only-${i}`,
    family,
    subnet: c.subnet ?? '',
    ipRange: c.ipRange,
    gateway: c.gateway ?? '',
    auxAddresses: c.auxAddresses ?? {},
  };
}

function familyOfConfig(c: IpamConfigRequest): 4 | 6 | undefined {
  const sample = c.subnet?.split('/')[0] ?? c.ipRange?.split('/')[0] ?? c.gateway;
  if (sample === undefined) return undefined;
  const f = isIP(sample);
  if (f === 0) throw new InvalidParameterError(`invalid address ${JSON.stringify(sample)} in IPAM config`);
  return f as 4 | 6;
}

async function reservePools(
  ctx: Ctx,
  configs: IpamConfigRequest[],
  enableIPv4: boolean,
  enableIPv6: boolean,
  global: boolean,
): Promise<Pool[]> {
  const requests: PoolRequest[] = [];
  for (const c of configs) {
    if (!c.subnet && (c.ipRange || c.gateway || Object.keys(c.auxAddresses ?? {}).length > 0)) {
      throw new InvalidParameterError('IP range, gateway and auxiliary addresses need a subnet');
    }
    const family = familyOfConfig(c);
    if (family === 4 && !enableIPv4) throw new InvalidParameterError('an IPv4 subnet was given but IPv4 is disabled');
    if (family === 6 && !enableIPv6) throw new InvalidParameterError('an IPv6 subnet was given but IPv6 is not enabled');
    requests.push({ family: family ?? 4, subnet: c.subnet, ipRange: c.ipRange, gateway: c.gateway, auxAddresses: c.auxAddresses });
  }
  if (enableIPv4 && !requests.some((r) => r.family === 4)) requests.push({ family: 4 });
  if (enableIPv6 && !requests.some((r) => r.family === 6)) requests.push({ family: 6 });

  const needsAvoid = requests.some((r) => !r.subnet);
  const avoid = needsAvoid ? await hostRouteSubnets(ctx) : [];
  const granted: Pool[] = [];
  try {
    // Automatic IPv4 subnets of global networks come from Docker's global address space (10.0.0.0/8).
    const from = (r: PoolRequest) => (global && r.family === 4 ? { from: GLOBAL_V4_POOLS } : {});
    for (const r of requests) granted.push(ctx.ipam.requestPool(r.subnet ? r : { ...r, avoid, ...from(r) }));
  } catch (err) {
    granted.forEach((p) => ctx.ipam.releasePool(p.id));
    throw err;
  }
  return granted;
}

/** Subnets routed in the daemon's namespace that are not cnm's own: automatic pools stay clear of them. */
async function hostRouteSubnets(ctx: Ctx): Promise<string[]> {
  const own = new Set([...ctx.state.networks.values()].flatMap((n) => n.ipam.pools.map((p) => p.subnet)));
  const routes = [...(await ctx.kernel.routeList(null, 4)), ...(await ctx.kernel.routeList(null, 6))];
  return routes.map((r) => r.dst).filter((d) => d !== 'default' && d.includes('/') && !own.has(d));
}

function familyOption(options: Record<string, string>, key: string): boolean | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  const b = goParseBool(v);
  if (b === undefined) throw new InvalidParameterError(`driver-opt "${key}" is not a valid bool`);
  return b;
}

export async function removeNetwork(ctx: Ctx, ref: string): Promise<void> {
  const net = ctx.state.network(ref);
  if (net.predefined) throw new ForbiddenError(`${net.name} is a pre-defined network and cannot be removed`);
  const eps = ctx.state.endpointsOfNetwork(net.id);
  if (eps.length > 0) {
    const names = eps.map((e) => e.name).join(', ');
    throw new ForbiddenError(`error while removing network: network ${net.name} id ${net.id} has active endpoints (${names})`);
  }
  const remote = activeRemoteEndpointsOf(ctx, net.id);
  if (remote.length > 0) {
    const names = remote.map((e) => `${e.name} on host ${e.hostId ?? '?'}`).join(', ');
    throw new ForbiddenError(`error while removing network: network ${net.name} id ${net.id} has active endpoints (${names})`);
  }
  const attachments = ctx.state.attachmentsOfNetwork(net.id);
  if (attachments.length > 0) {
    const names = attachments.map((a) => `${a.owner} endpoint ${a.id.slice(0, 12)}`).join(', ');
    throw new ForbiddenError(`error while removing network: network ${net.name} id ${net.id} has active endpoints (${names})`);
  }
  const services = ctx.state.servicesOfNetwork(net.id);
  if (services.length > 0) {
    const names = services.map((s) => s.name).join(', ');
    throw new ForbiddenError(`error while removing network: network ${net.name} id ${net.id} has active services (${names})`);
  }
  const users = [...ctx.state.networks.values()].filter((n) => n.configFrom === net.name || n.configFrom === net.id);
  if (users.length > 0) {
    throw new ForbiddenError(`configuration network ${net.name} is in use by ${users.map((u) => u.name).join(', ')}`);
  }
  await destroyNetwork(ctx, net);
}

/**
 * Kernel first, record last. A global network's shared record goes first instead: while the cluster store
 * cannot be reached the removal fails (503) before anything that forwards is torn down; a crash after it
 * leaves only this host's side, which the next start no longer restores.
 */
export async function destroyNetwork(ctx: Ctx, net: NetworkRecord): Promise<void> {
  if (isGlobal(net)) {
    await deleteGlobalNetwork(ctx, net);
    await dropNetworkLocally(ctx, net);
    await ctx.repo.uncacheGlobalNetwork(net.id);
    return;
  }
  if (!net.configOnly) await dropKernelSide(ctx, net);
  await ctx.repo.deleteNetwork(net);
  forgetNetwork(ctx, net);
}

/** A network's kernel side and in-memory state (a global network removed here or on another host). */
export async function dropNetworkLocally(ctx: Ctx, net: NetworkRecord): Promise<void> {
  if (!net.configOnly) await dropKernelSide(ctx, net);
  forgetNetwork(ctx, net);
}

async function dropKernelSide(ctx: Ctx, net: NetworkRecord): Promise<void> {
  const rt = runtimeOf(ctx, net);
  await rt.driver.deleteNetwork(toDriverNetwork(net, rt.options));
  if (rt.firewall) await ctx.firewall.removeNetwork(rt.firewall);
  net.ipam.pools.forEach((p) => ctx.ipam.releasePool(p.id));
}

function forgetNetwork(ctx: Ctx, net: NetworkRecord): void {
  ctx.state.deleteNetwork(net.id);
  ctx.networks.delete(net.id);
  ctx.discovery.networkRemoved(net.id);
  ctx.emit({ type: 'network', action: 'destroy', id: net.id, attributes: { name: net.name, type: net.driver } });
}

export async function pruneNetworks(ctx: Ctx, select: (n: NetworkRecord) => boolean): Promise<string[]> {
  const removed: string[] = [];
  const inUseAsConfig = new Set([...ctx.state.networks.values()].map((n) => n.configFrom).filter(Boolean));
  for (const net of [...ctx.state.networks.values()]) {
    if (net.predefined || ctx.state.endpointsOfNetwork(net.id).length > 0 || ctx.state.servicesOfNetwork(net.id).length > 0) continue;
    if (ctx.state.attachmentsOfNetwork(net.id).length > 0 || activeRemoteEndpointsOf(ctx, net.id).length > 0) continue;
    if (inUseAsConfig.has(net.name) || inUseAsConfig.has(net.id) || !select(net)) continue;
    await destroyNetwork(ctx, net);
    removed.push(net.name);
  }
  if (removed.length > 0) {
    ctx.emit({ type: 'network', action: 'prune', id: '', attributes: { reclaimed: '0' } });
  }
  return removed;
}
