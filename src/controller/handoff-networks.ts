/**
 * Networks made by another runtime through a front door (Docker's CreateNetwork). A local-scope network
 * is made with the runtime's ID. A global-scope one (an overlay) spans hosts, and each host's runtime
 * has its own ID for it: the first host's CreateNetwork makes it with its ID under the name the user
 * gave (`-o cnm.name`), the others find it by that name in the cluster and record their ID as an alias
 * of it (local store). DeleteNetwork through an alias only drops the alias (and endpoints that runtime
 * no longer has); through the network's own ID it removes the network as `network rm` does.
 */
import { ConflictError, InvalidParameterError } from '../errors.js';
import { clusterOf, isGlobal } from './cluster.js';
import { applyClusterEvents } from './cluster-sync.js';
import type { Ctx } from './context.js';
import { createNetwork, removeNetwork } from './networks.js';
import type { NetworkRecord } from './records.js';
import { keys } from './repository.js';
import type { CreateNetworkRequest } from './types.js';

/** The network a runtime's network ID names: the network with that ID, or the one it is an alias of. */
export function handoffNetworkId(ctx: Ctx, id: string): string {
  return ctx.state.networks.has(id) ? id : ctx.state.networkAliases.get(id) ?? id;
}

export async function createHandoffNetwork(ctx: Ctx, req: CreateNetworkRequest & { id: string }): Promise<NetworkRecord> {
  const driver = ctx.drivers.get(req.driver || 'bridge');
  // A driver cnm lacks or one that cannot hand interfaces over: createNetwork refuses it in its words.
  if (driver?.scope !== 'global' || !driver.joinForHandoff) return createNetwork(ctx, req);
  if (!req.nameGiven) {
    throw new InvalidParameterError(
      `a ${driver.name} network spans hosts: give it a name with -o cnm.name=NAME (the same on every host; each host's Docker network of that name is this one)`,
    );
  }
  clusterOf(ctx);
  const existing = await findGlobal(ctx, req.name);
  if (!existing) return createNetwork(ctx, req);
  if (!isGlobal(existing) || existing.driver !== driver.name) {
    throw new ConflictError(`network with name ${req.name} already exists (driver ${existing.driver}, ${existing.scope} scope)`);
  }
  const want = (req.ipam?.configs ?? []).map((c) => c.subnet).sort().join(', ');
  const have = existing.ipam.pools.map((p) => p.subnet).sort().join(', ');
  if (want !== have) {
    throw new ConflictError(`network with name ${req.name} already exists with subnet ${have}, not ${want || 'none'}: give this host the same --subnet`);
  }
  await ctx.repo.putNetworkAlias(req.id, existing.id);
  ctx.state.networkAliases.set(req.id, existing.id);
  ctx.logger.info('runtime network joins a global network of the cluster', { runtimeId: req.id, network: existing.name, id: existing.id });
  return existing;
}

/**
 * A global network of that name: this host's view, or (made a moment ago on another host, its watch
 * event not here yet) read from the cluster store and learned now.
 */
async function findGlobal(ctx: Ctx, name: string): Promise<NetworkRecord | undefined> {
  const known = ctx.state.networkByName(name);
  if (known) return known;
  const g = clusterOf(ctx);
  const id = (await g.deps.store.get(keys.networkName(name)))?.value;
  const record = id === undefined ? undefined : await g.deps.store.get(keys.network(id));
  if (!record) return undefined;
  g.pending.push({ kind: 'record', event: { type: 'put', key: record.key, value: record.value, modRevision: record.modRevision } });
  await applyClusterEvents(ctx);
  return ctx.state.networkByName(name);
}

/**
 * The runtime deleted its network: its alias goes (the global network stays for the other hosts), or
 * the network itself when the ID is its own. Idempotent.
 */
export async function removeHandoffNetwork(ctx: Ctx, id: string, dropStale: (networkId: string) => Promise<void>): Promise<void> {
  const target = ctx.state.networkAliases.get(id);
  if (target === undefined) {
    if (!ctx.state.networks.has(id)) return;
    await dropStale(id);
    await removeNetwork(ctx, id);
    return;
  }
  if (ctx.state.networks.has(target)) await dropStale(target);
  await ctx.repo.deleteNetworkAlias(id);
  ctx.state.networkAliases.delete(id);
}
