/**
 * Global-scope networks: the records of networks whose driver has `scope: 'global'`, with their name,
 * pool, address and cluster-wide number claims and the endpoint records of every host, live in the
 * shared cluster store (etcd); local networks stay in the local store exactly as before. This host keeps
 * a cache of the global records in memory (kept by a watch: cluster-sync.ts), so reads and the data plane
 * never wait on etcd; only global mutations do, and they answer 503 while etcd cannot be reached.
 *
 * Each host also keeps its own endpoints on global networks in the local store (they belong to its
 * sandboxes) and a copy of the records of the global networks it knows, so a restart can republish
 * what etcd lost (a wiped or restored etcd).
 */
import { AddressInUseError, ConflictError, ForbiddenError, InvalidParameterError, StoreConflictError } from '../errors.js';
import type { HostDirectory, HostRecord, MembershipEvent } from '../store/membership.js';
import type { Store, TxnOp, WatchEvent } from '../store/types.js';
import { subnetContainsIp } from '../util/ip.js';
import type { Ctx } from './context.js';
import type { EndpointRecord, NetworkRecord, ServiceRecord } from './records.js';
import { keys, RECORDS_PREFIX, Repository, type AddressClaim, type PersistedState } from './repository.js';

/** What the daemon wires in when it runs with --cluster-store. */
export interface ClusterDeps {
  /** The shared store (etcd). */
  store: Store;
  /** This host's id (the one it registers under in the membership). */
  hostId: string;
  /** This host's underlay address: the VTEP of its endpoints. */
  advertiseAddr: string;
  /** The registered (live) hosts. */
  hosts: HostDirectory;
}

/** The controller's cluster state: the cache of other hosts' records and what the watches delivered. */
export interface ClusterRuntime {
  deps: ClusterDeps;
  repo: Repository;
  /** Endpoints of other hosts, per global network. */
  remote: Map<string, Map<string, EndpointRecord>>;
  /** Registered hosts by id. */
  hosts: Map<string, HostRecord>;
  /** Watch events not applied yet (applied one batch at a time under the controller's mutex). */
  pending: Array<{ kind: 'record'; event: WatchEvent } | { kind: 'host'; event: MembershipEvent }>;
  /** Global networks whose peers must be sent to the driver again. */
  dirty: Set<string>;
  /** What setPeers last got per network (JSON), so an unchanged list is not sent again on a change. */
  sentPeers: Map<string, string>;
  /** Per global network, the remote endpoints whose names the service discovery has now (JSON of what it got). */
  sentNames: Map<string, Map<string, string>>;
  stops: Array<() => void>;
}

export function newClusterRuntime(deps: ClusterDeps): ClusterRuntime {
  return { deps, repo: new Repository(deps.store), remote: new Map(), hosts: new Map(), pending: [], dirty: new Set(), sentPeers: new Map(), sentNames: new Map(), stops: [] };
}

export function isGlobal(net: NetworkRecord): boolean {
  return net.scope === 'global';
}

/** The cluster of a global network; a daemon without a cluster store cannot have one. */
export function clusterOf(ctx: Ctx): ClusterRuntime {
  if (!ctx.global) {
    throw new ForbiddenError('global-scope networks need a cluster store: start the daemon with --cluster-store and --advertise-addr');
  }
  return ctx.global;
}

export function remoteEndpointsOf(ctx: Ctx, networkId: string): EndpointRecord[] {
  return [...(ctx.global?.remote.get(networkId)?.values() ?? [])];
}

/**
 * Whether another host's endpoint is in use: its host is registered now (or the record names none).
 * The records of a host whose lease expired (dead, or cut off from etcd for longer than its TTL) stay in
 * the store, but no longer keep a network in use: removing the network removes them with it.
 */
function hostIsLive(g: ClusterRuntime, ep: EndpointRecord): boolean {
  return ep.hostId === undefined || g.hosts.has(ep.hostId);
}

/** Other hosts' endpoints on a network that keep it in use (their host is live). */
export function activeRemoteEndpointsOf(ctx: Ctx, networkId: string): EndpointRecord[] {
  const g = ctx.global;
  return g ? remoteEndpointsOf(ctx, networkId).filter((ep) => hostIsLive(g, ep)) : [];
}

/** The endpoints of a global network on OTHER hosts whose host is registered (its lease alive) now. */
export function liveRemoteEndpoints(g: ClusterRuntime, networkId: string): Array<{ ep: EndpointRecord; advertiseAddr: string }> {
  const live: Array<{ ep: EndpointRecord; advertiseAddr: string }> = [];
  for (const ep of g.remote.get(networkId)?.values() ?? []) {
    const host = ep.hostId === undefined ? undefined : g.hosts.get(ep.hostId);
    if (host && ep.hostId !== g.deps.hostId) live.push({ ep, advertiseAddr: host.advertiseAddr });
  }
  return live;
}

/**
 * Every backend of a service: this host's endpoints that joined it (plus `joining`, an endpoint being
 * connected) and, on a global network, those of other hosts whose lease is alive (their shared records
 * carry their services). A host whose lease expires takes its backends out with it.
 */
export function serviceBackends(ctx: Ctx, svc: ServiceRecord, joining?: EndpointRecord): EndpointRecord[] {
  const backends = ctx.state.backendsOf(svc);
  if (joining && joining.networkId === svc.networkId && joining.services?.includes(svc.id)) backends.push(joining);
  if (!ctx.global) return backends;
  for (const { ep } of liveRemoteEndpoints(ctx.global, svc.networkId)) if (ep.services?.includes(svc.id)) backends.push(ep);
  return backends;
}

/** Address claims of an endpoint record (its addresses in the network's pools). */
export function addressClaims(net: NetworkRecord, ep: Pick<EndpointRecord, 'ipv4Address' | 'ipv6Address'>): AddressClaim[] {
  const out: AddressClaim[] = [];
  for (const cidr of [ep.ipv4Address, ep.ipv6Address]) {
    if (!cidr) continue;
    const address = cidr.split('/')[0]!;
    const pool = net.ipam.pools.find((p) => subnetContainsIp(p.subnet, address));
    if (pool) out.push({ poolId: pool.id, address });
  }
  return out;
}

// ---- cluster-wide numbers (the overlay's VNI) -------------------------------------------------------

export interface ClusterIdSpec {
  option: string;
  min: number;
  max: number;
}

/** The number the user gave under the driver's option (the first of a comma list), checked; undefined if none. */
export function givenClusterId(spec: ClusterIdSpec, options: Record<string, string>): number | undefined {
  const raw = options[spec.option];
  if (raw === undefined) return undefined;
  const first = raw.split(',')[0]!.trim();
  const n = /^\d{1,10}$/.test(first) ? Number(first) : NaN;
  if (!(n >= spec.min && n <= spec.max)) {
    throw new InvalidParameterError(`invalid ${spec.option} ${JSON.stringify(raw)}: a number from ${spec.min} to ${spec.max}`);
  }
  return n;
}

/**
 * Creates a global network's record with its name, pools and cluster-wide number in ONE transaction of
 * the shared store. Without a given number, the lowest free one from `min` is tried, and the next after a
 * conflict (another host took it at the same moment); `validate` (the driver's checks) sees each
 * candidate before it is claimed. Returns the record as stored (its options carry the number).
 */
export async function persistGlobalNetwork(
  ctx: Ctx,
  record: NetworkRecord,
  spec: ClusterIdSpec | undefined,
  given: number | undefined,
  validate: (candidate: NetworkRecord) => void,
): Promise<NetworkRecord> {
  const g = clusterOf(ctx);
  if (!spec) {
    validate(record);
    await createGlobal(g, record, []);
    return record;
  }
  const taken = new Set(given !== undefined ? [] : (await g.deps.store.list(keys.clusterIds(record.driver))).map((e) => Number(e.key.slice(e.key.lastIndexOf('/') + 1))));
  let candidate = given ?? spec.min;
  for (let attempt = 0; attempt < 32; attempt++) {
    while (given === undefined && taken.has(candidate)) candidate++;
    if (candidate > spec.max) break;
    const withId: NetworkRecord = { ...record, options: { ...record.options, [spec.option]: String(candidate) } };
    const claim: TxnOp = { op: 'put', key: keys.clusterId(record.driver, candidate), value: record.id, expectedRevision: 0 };
    validate(withId);
    try {
      await createGlobal(g, withId, [claim]);
      return withId;
    } catch (err) {
      if (!(err instanceof StoreConflictError) || err.key !== claim.key) throw err;
      if (given !== undefined) throw new ConflictError(`${spec.option} ${given} is already in use by another network`);
      taken.add(candidate);
    }
  }
  throw new ForbiddenError(`no free ${spec.option} left from ${spec.min} to ${spec.max}`);
}

async function createGlobal(g: ClusterRuntime, record: NetworkRecord, extra: TxnOp[]): Promise<void> {
  // Host-local facts (the driver's state) never go to the shared record.
  await g.repo.createNetwork({ ...record, driverState: {} }, extra);
}

/**
 * The transaction that removes a global network's record with every claim it holds, and the records
 * (with their address claims) that departed hosts left on it — on the condition that each of those
 * hosts is still unregistered: one that came back meanwhile makes the removal fail (403) instead.
 */
export async function deleteGlobalNetwork(ctx: Ctx, net: NetworkRecord): Promise<void> {
  const g = clusterOf(ctx);
  const spec = ctx.drivers.get(net.driver)?.clusterId;
  const n = spec ? Number(net.options[spec.option]?.split(',')[0]) : NaN;
  const extra: TxnOp[] = Number.isInteger(n) ? [{ op: 'delete', key: keys.clusterId(net.driver, n) }] : [];
  const departed = remoteEndpointsOf(ctx, net.id).filter((ep) => !hostIsLive(g, ep));
  const hostKeys = new Set(departed.map((ep) => g.deps.hosts.key(ep.hostId!)));
  for (const key of hostKeys) extra.push({ op: 'check', key, expectedRevision: 0 });
  for (const ep of departed) {
    extra.push({ op: 'delete', key: keys.endpoint(ep.id) });
    for (const c of addressClaims(net, ep)) extra.push({ op: 'delete', key: keys.address(c.poolId, c.address) });
  }
  try {
    await g.repo.deleteNetwork(net, extra);
  } catch (err) {
    if (err instanceof StoreConflictError && hostKeys.has(err.key)) {
      throw new ForbiddenError(`error while removing network: network ${net.name} id ${net.id} has active endpoints (host ${err.key.slice(err.key.lastIndexOf('/') + 1)} registered again)`);
    }
    throw err;
  }
  if (departed.length > 0) {
    ctx.logger.warn('removed the endpoint records departed hosts left on the network', { network: net.name, endpoints: departed.map((ep) => `${ep.name} on host ${ep.hostId}`) });
  }
}

/**
 * Publishes a new endpoint of a global network (its record, with this host's id and VTEP, and its
 * address claims) in one transaction of the shared store. An automatic address another host took at
 * the same moment (its record has not reached this host yet) is given up for the next free one.
 * `claims` and the endpoint's addresses are updated in place; a requested (static) address is never changed.
 */
export async function publishEndpoint(ctx: Ctx, net: NetworkRecord, ep: EndpointRecord, claims: AddressClaim[]): Promise<void> {
  const g = clusterOf(ctx);
  ep.hostId = g.deps.hostId;
  ep.vtep = g.deps.advertiseAddr;
  for (let attempt = 0; ; attempt++) {
    try {
      await g.repo.createEndpoint(ep, claims);
      return;
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
      const i = claims.findIndex((c) => err.key === keys.address(c.poolId, c.address));
      const pool = i < 0 ? undefined : net.ipam.pools.find((p) => p.id === claims[i]!.poolId);
      const isStatic = pool?.family === 6 ? ep.staticIpv6 : ep.staticIpv4;
      if (!pool || isStatic || attempt >= 64) throw new AddressInUseError('Address already in use');
      const lost = claims[i]!;
      const next = ctx.ipam.requestAddress(lost.poolId);
      ctx.ipam.releaseAddress(lost.poolId, lost.address);
      claims[i] = { poolId: lost.poolId, address: next };
      const cidr = `${next}/${pool.subnet.split('/')[1]}`;
      if (pool.family === 6) ep.ipv6Address = cidr;
      else ep.ipv4Address = cidr;
    }
  }
}

export async function withdrawEndpoint(ctx: Ctx, net: NetworkRecord, ep: EndpointRecord): Promise<void> {
  await clusterOf(ctx).repo.deleteEndpoint(ep, addressClaims(net, ep));
}

// ---- start-up ----------------------------------------------------------------------------------------

interface Snapshot {
  networks: Map<string, NetworkRecord>;
  endpoints: EndpointRecord[];
  services: ServiceRecord[];
}

function parseSnapshot(entries: Array<{ key: string; value: string }>): Snapshot {
  const networks = new Map<string, NetworkRecord>();
  const endpoints: EndpointRecord[] = [];
  const services: ServiceRecord[] = [];
  for (const e of entries) {
    if (e.key.startsWith(keys.network(''))) {
      const net = JSON.parse(e.value) as NetworkRecord;
      networks.set(net.id, net);
    } else if (e.key.startsWith(keys.endpoint(''))) endpoints.push(JSON.parse(e.value) as EndpointRecord);
    else if (e.key.startsWith(keys.service(''))) services.push(JSON.parse(e.value) as ServiceRecord);
  }
  return { networks, endpoints, services };
}

/**
 * Start-up, before the reconcile: reads the global records in one snapshot and starts the watches right
 * after it (no change between the two is missed; events wait until the start is done), republishes this
 * host's endpoints (and their networks) that etcd lost, withdraws records of its own that its local store
 * does not have (a crash between the two writes), and adds the global networks and their services to
 * `persisted` so the reconcile restores them like local ones. Remote endpoints go to the cache.
 */
export async function loadCluster(ctx: Ctx, persisted: PersistedState, onChange: () => void): Promise<void> {
  const g = clusterOf(ctx);
  const { store, hostId } = g.deps;
  const snapshot = parseSnapshot(await store.list(RECORDS_PREFIX));
  g.stops.push(store.watch(RECORDS_PREFIX, (event) => {
    g.pending.push({ kind: 'record', event });
    onChange();
  }));
  for (const h of await g.deps.hosts.hosts()) g.hosts.set(h.id, h);
  g.stops.push(g.deps.hosts.watch((event) => {
    g.pending.push({ kind: 'host', event });
    onChange();
  }));

  const localNetworks = new Set(persisted.networks.map((n) => n.id));
  const mine = persisted.endpoints.filter((ep) => !localNetworks.has(ep.networkId));
  const cached = new Map((await ctx.repo.cachedGlobalNetworks()).map((n) => [n.id, n]));
  const published = new Set(snapshot.endpoints.map((ep) => ep.id));
  for (const ep of mine) {
    let net = snapshot.networks.get(ep.networkId);
    const copy = cached.get(ep.networkId);
    if (!net && copy) {
      await republishNetwork(ctx, copy);
      snapshot.networks.set(copy.id, copy);
      net = copy;
    }
    if (!net || published.has(ep.id)) continue;
    ctx.logger.warn('the cluster store lost an endpoint of this host; publishing it again', { network: net.name, endpoint: ep.id });
    const claims = addressClaims(net, ep).map((c) => ({ key: keys.address(c.poolId, c.address), value: ep.id }));
    const record = { key: keys.endpoint(ep.id), value: JSON.stringify({ ...ep, hostId, vtep: g.deps.advertiseAddr }) };
    await republish(ctx, record, claims, `endpoint ${ep.id}`);
  }
  // Docker's endpoints on global networks are published as endpoints too (attachments.ts).
  const mineIds = new Set([...mine.map((ep) => ep.id), ...persisted.attachments.map((a) => a.id)]);
  for (const ep of snapshot.endpoints) {
    const net = snapshot.networks.get(ep.networkId);
    if (ep.hostId === hostId) {
      if (!mineIds.has(ep.id) && net) await withdrawEndpoint(ctx, net, ep);
    } else if (net) {
      let map = g.remote.get(net.id);
      if (!map) g.remote.set(net.id, (map = new Map()));
      map.set(ep.id, ep);
    }
  }
  for (const net of snapshot.networks.values()) {
    if (!cached.has(net.id)) await ctx.repo.cacheGlobalNetwork(net);
    persisted.networks.push(net);
  }
  for (const id of cached.keys()) if (!snapshot.networks.has(id)) await ctx.repo.uncacheGlobalNetwork(id);
  // Services of global networks: the reconcile restores them with the local ones (names, VIP claims).
  for (const svc of snapshot.services) if (snapshot.networks.has(svc.networkId)) persisted.services.push(svc);
}

async function republishNetwork(ctx: Ctx, net: NetworkRecord): Promise<void> {
  ctx.logger.warn('the cluster store lost a global network this host has endpoints on; publishing it again', { network: net.name, id: net.id });
  const spec = ctx.drivers.get(net.driver)?.clusterId;
  const n = spec ? Number(net.options[spec.option]?.split(',')[0]) : NaN;
  const claims = [
    { key: keys.networkName(net.name), value: net.id },
    ...net.ipam.pools.map((p) => ({ key: keys.pool(p.id), value: net.id })),
    ...(Number.isInteger(n) ? [{ key: keys.clusterId(net.driver, n), value: net.id }] : []),
  ];
  await republish(ctx, { key: keys.network(net.id), value: JSON.stringify({ ...net, driverState: {} }) }, claims, `network ${net.name}`);
}

/**
 * Writes a lost record again with its claims in one transaction: a claim still held by the same owner
 * (etcd lost only part) is kept as it is, one held by another owner (made meanwhile) stops it — this
 * host keeps its own copy and logs why.
 */
async function republish(ctx: Ctx, record: { key: string; value: string }, claims: Array<{ key: string; value: string }>, what: string): Promise<void> {
  const { store } = clusterOf(ctx).deps;
  try {
    const ops: TxnOp[] = [{ op: 'put', key: record.key, value: record.value, expectedRevision: 0 }];
    for (const c of claims) {
      const held = await store.get(c.key);
      if (held && held.value !== c.value) throw new ConflictError(`${c.key} is held by ${held.value} now`);
      ops.push(held ? { op: 'check', key: c.key, expectedRevision: held.modRevision } : { op: 'put', key: c.key, value: c.value, expectedRevision: 0 });
    }
    await store.txn(ops);
  } catch (err) {
    ctx.logger.error(`${what} could not be published again`, { error: err });
  }
}

/** Stops the watches (the daemon's stop). */
export function stopCluster(ctx: Ctx): void {
  for (const stop of ctx.global?.stops.splice(0) ?? []) stop();
}

