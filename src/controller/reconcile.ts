/**
 * Start-up reconcile: bring the kernel back to what the store says and remove whatever cnm left in
 * the kernel that the store does not know (after a crash or kill -9). Objects that are intact are not
 * touched, so sandboxes keep their connectivity while the daemon restarts; the firewall is replaced in
 * one atomic transaction.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, TeardownErrors } from '../errors.js';
import { DEFAULT_OWNER_GROUP } from '../kernel/types.js';
import type { FirewallNetwork } from '../firewall/types.js';
import { ownsNamespace, prepareOwnNamespace, runtimeOf, toDriverEndpoint, toDriverNetwork, toDriverSandbox, type Ctx } from './context.js';
import { attachmentClaims, removeAttachment, toHandoffEndpoint } from './attachments.js';
import { claimsOf, joinOutcome, programRoutes, removeEndpoint } from './endpoints.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import type { PersistedState } from './repository.js';
import { discoveryEndpoint, discoveryNetwork, resolverModeFor } from './sandbox-dns.js';
import { destroySandbox, releaseLostSandbox } from './sandboxes.js';
import { followedNamespaceAlive } from './adopted-netns.js';
import { enableLocalnetFor, firewallPorts } from './ports.js';
import { firewallServices, restoreServices, vipAddresses, vipClaims } from './services.js';
import { remoteClaims } from './cluster-sync.js';

export interface ReconcileReport {
  networks: number;
  sandboxes: number;
  endpoints: number;
  sandboxesRecreated: number;
  endpointsRejoined: number;
  staleRecordsRemoved: number;
  /** Sandboxes whose create was cut short (record still marked `creating`): removed again. */
  createsRolledBack: number;
  linksRemoved: string[];
  namespacesRemoved: string[];
}

export async function reconcile(ctx: Ctx, persisted: PersistedState): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    networks: 0,
    sandboxes: 0,
    endpoints: 0,
    sandboxesRecreated: 0,
    endpointsRejoined: 0,
    staleRecordsRemoved: 0,
    createsRolledBack: 0,
    linksRemoved: [],
    namespacesRemoved: [],
  };
  // Links a previous run retired but had not destroyed yet (killed meanwhile) go first.
  await ctx.kernel.settle();
  await loadState(ctx, persisted, report);
  restoreDiscovery(ctx);
  restoreIpam(ctx);
  await restoreNetworks(ctx);
  await dropVanishedAttachments(ctx, report);
  for (const sb of [...ctx.state.sandboxes.values()]) await restoreSandboxOrReport(ctx, sb, report);
  await removeLeakedLinks(ctx, report);
  await removeLeakedNamespaces(ctx, report);
  report.networks = ctx.state.networks.size;
  report.sandboxes = ctx.state.sandboxes.size;
  report.endpoints = ctx.state.endpoints.size;
  return report;
}

async function loadState(ctx: Ctx, persisted: PersistedState, report: ReconcileReport): Promise<void> {
  persisted.networks.forEach((n) => ctx.state.putNetwork(n));
  persisted.sandboxes.forEach((s) => ctx.state.putSandbox(s));
  for (const svc of persisted.services) {
    if (ctx.state.networks.has(svc.networkId)) ctx.state.putService(svc);
    else {
      await ctx.repo.deleteService(svc, vipClaims(svc));
      report.staleRecordsRemoved++;
    }
  }
  for (const a of persisted.aliases) ctx.state.networkAliases.set(a.alias, a.networkId);
  for (const att of persisted.attachments) {
    const net = ctx.state.networks.get(att.networkId);
    if (net) ctx.state.putAttachment(att);
    else {
      await ctx.repo.deleteAttachment(att, []);
      report.staleRecordsRemoved++;
    }
  }
  for (const ep of persisted.endpoints) {
    const net = ctx.state.networks.get(ep.networkId);
    if (net && ctx.state.sandboxes.has(ep.sandboxId)) {
      ctx.state.putEndpoint(ep);
    } else {
      // An endpoint whose network or sandbox is gone can only be debris: forget it and its claims.
      await ctx.repo.deleteEndpoint(ep, net ? claimsOf(net, ep) : []);
      report.staleRecordsRemoved++;
    }
  }
}

/** The service discovery starts empty with the daemon: give it the whole persisted picture. */
function restoreDiscovery(ctx: Ctx): void {
  for (const net of ctx.state.networks.values()) ctx.discovery.networkCreated(discoveryNetwork(net));
  for (const sb of ctx.state.sandboxes.values()) {
    ctx.discovery.sandboxCreated(sb.id, sb.dns);
    for (const ep of ctx.state.endpointsOfSandbox(sb.id)) ctx.discovery.endpointJoined(discoveryEndpoint(sb, ep));
  }
}

function restoreIpam(ctx: Ctx): void {
  for (const net of ctx.state.networks.values()) {
    if (net.configOnly) continue;
    const eps = ctx.state.endpointsOfNetwork(net.id);
    for (const pool of net.ipam.pools) {
      const addresses = [
        ...eps.flatMap((ep) => claimsOf(net, ep)),
        ...ctx.state.servicesOfNetwork(net.id).flatMap(vipClaims),
        ...ctx.state.attachmentsOfNetwork(net.id).flatMap((att) => attachmentClaims(net, att)),
        // Other hosts' endpoints on a global network.
        ...remoteClaims(ctx, net),
      ]
        .filter((c) => c.poolId === pool.id)
        .map((c) => c.address);
      try {
        ctx.ipam.restorePool(pool, addresses);
      } catch (err) {
        // A global network (made on another host) whose subnet a local network of this host holds: the
        // daemon starts, the network gets no addresses here (connects to it fail), logged.
        if (net.scope !== 'global') throw err;
        ctx.logger.error('global network overlaps a network of this host; no addresses from it here', { network: net.name, error: errorMessage(err) });
      }
    }
  }
}

async function restoreNetworks(ctx: Ctx): Promise<void> {
  for (const net of ctx.state.networks.values()) {
    if (!net.configOnly) await restoreOneNetwork(ctx, net);
  }
  await restoreServices(ctx);
  await ctx.firewall.reconcile(firewallPrograms(ctx), firewallServices(ctx), firewallPorts(ctx));
  // A bridge re-created after a reboot has lost its sysctls.
  for (const sb of ctx.state.sandboxes.values()) {
    await enableLocalnetFor(ctx, sb.ports, sb.portsNetworkId).catch((err: unknown) => ctx.logger.error('route_localnet not set', { sandbox: sb.id, error: err }));
  }
}

function firewallPrograms(ctx: Ctx): FirewallNetwork[] {
  return [...ctx.networks.values()].flatMap((rt) => (rt.firewall && rt.error === undefined ? [rt.firewall] : []));
}

/**
 * One network's kernel side. A network that cannot be restored (a link that is not a bridge holds its
 * bridge's name, ...) does not stop the daemon: it is marked out of service — `CnmError` in inspect, a log
 * line, an `error` event — gets no firewall elements, and is retried by retryBrokenNetwork.
 */
async function restoreOneNetwork(ctx: Ctx, net: NetworkRecord): Promise<boolean> {
  const rt = runtimeOf(ctx, net);
  try {
    const program = await rt.driver.restoreNetwork(toDriverNetwork(net, rt.options));
    rt.firewall = program.firewall;
    if (rt.error !== undefined) ctx.logger.info('network restored', { network: net.name });
    rt.error = undefined;
    return true;
  } catch (err) {
    const error = errorMessage(err);
    rt.firewall = undefined;
    if (rt.error !== error) {
      ctx.logger.error('network could not be restored; out of service until fixed', { network: net.name, id: net.id, error });
      ctx.emit({ type: 'network', action: 'error', id: net.id, attributes: { name: net.name, type: net.driver, error } });
    }
    rt.error = error;
    return false;
  }
}

/**
 * Try an out-of-service network again (before a connect to it, and on the daemon's periodic check): on
 * success its firewall, VIPs and endpoints come back. Returns the error when it is still broken.
 */
export async function retryBrokenNetwork(ctx: Ctx, net: NetworkRecord): Promise<string | undefined> {
  const rt = ctx.networks.get(net.id);
  if (rt?.error === undefined) return undefined;
  if (!(await restoreOneNetwork(ctx, net))) return rt.error;
  for (const svc of ctx.state.servicesOfNetwork(net.id)) {
    for (const vip of vipAddresses(svc)) await rt.driver.setServiceAddress?.(toDriverNetwork(net, rt.options), vip, true);
  }
  await ctx.firewall.reconcile(firewallPrograms(ctx), firewallServices(ctx), firewallPorts(ctx));
  for (const ep of ctx.state.endpointsOfNetwork(net.id)) {
    const sb = ctx.state.sandboxes.get(ep.sandboxId);
    if (!sb) continue;
    await rejoinIfBroken(ctx, sb, ep, false);
    await programRoutes(ctx, sb, ctx.state.endpointsOfSandbox(sb.id), true);
  }
  return undefined;
}

/** Every out-of-service network, tried again (the daemon's periodic check). */
export async function retryBrokenNetworks(ctx: Ctx): Promise<void> {
  for (const net of [...ctx.state.networks.values()]) {
    await retryBrokenNetwork(ctx, net).catch((err: unknown) =>
      ctx.logger.error('retry of an out-of-service network failed', { network: net.name, error: errorMessage(err) }),
    );
  }
}

/** One sandbox that cannot be restored does not stop the daemon either: logged, an `error` event. */
async function restoreSandboxOrReport(ctx: Ctx, sb: SandboxRecord, report: ReconcileReport): Promise<void> {
  try {
    if (sb.creating) await rollBackCreate(ctx, sb, report);
    else await restoreSandbox(ctx, sb, report);
  } catch (err) {
    const error = errorMessage(err);
    ctx.logger.error('sandbox could not be restored', { sandbox: sb.name, id: sb.id, error });
    ctx.emit({ type: 'sandbox', action: 'error', id: sb.id, attributes: { name: sb.name, error } });
  }
}

/**
 * The daemon stopped inside a sandbox create: its client never got an answer, so the create is undone
 * as a failed create is — endpoints (kernel, then records and address claims), DNS, namespace or pin,
 * files, and the record last. Forced: parts that never came to be are skipped; whatever cannot be
 * removed now (a pin) is taken by the leak sweep that follows.
 */
async function rollBackCreate(ctx: Ctx, sb: SandboxRecord, report: ReconcileReport): Promise<void> {
  ctx.logger.warn('sandbox create was interrupted; rolling it back', { sandbox: sb.name, id: sb.id });
  await destroySandbox(ctx, sb, true);
  report.createsRolledBack++;
}

async function restoreSandbox(ctx: Ctx, sb: SandboxRecord, report: ReconcileReport): Promise<void> {
  const endpoints = ctx.state.endpointsOfSandbox(sb.id);
  let recreated = false;
  if (sb.followsNetns !== undefined && !(await followedNamespaceAlive(ctx, sb))) {
    // Died (or its path names another namespace now) while the daemon was down: nothing in it to change.
    await releaseLostSandbox(ctx, sb);
    report.staleRecordsRemoved++;
    return;
  }
  if (!sb.hostNetwork && !(await ctx.kernel.netnsExists(sb.netnsPath))) {
    if (sb.adopted) {
      // The runtime that owned the namespace is gone, and with it everything inside: forget the sandbox.
      ctx.logger.warn('adopted namespace is gone; removing sandbox', { sandbox: sb.name, netns: sb.netnsPath });
      await forgetSandbox(ctx, sb, endpoints);
      report.staleRecordsRemoved++;
      return;
    }
    await prepareOwnNamespace(ctx, sb, true);
    recreated = true;
    report.sandboxesRecreated++;
  } else if (ownsNamespace(sb)) {
    // Made by a cnm from before this default (idempotent): its next interfaces start without IPv6 too.
    await prepareOwnNamespace(ctx, sb, false);
  }
  for (const ep of endpoints) {
    // An endpoint of an out-of-service network waits for it (retryBrokenNetwork rejoins it).
    if (ctx.networks.get(ep.networkId)?.error !== undefined) continue;
    if (await rejoinIfBroken(ctx, sb, ep, recreated)) report.endpointsRejoined++;
  }
  const current = ctx.state.endpointsOfSandbox(sb.id);
  await programRoutes(ctx, sb, current, true);
  const resolver = resolverModeFor(ctx, sb, current);
  if (resolver === 'embedded') await attachDns(ctx, sb);
  await ctx.files.write(sb, current, resolver);
}

/** A sandbox whose namespace cannot be served must not stop the daemon: its next connect tries again. */
async function attachDns(ctx: Ctx, sb: SandboxRecord): Promise<void> {
  try {
    await ctx.discovery.attach(sb.id, sb.netnsPath);
  } catch (err) {
    ctx.logger.error('embedded DNS could not be attached to the sandbox', { sandbox: sb.name, error: err });
  }
}

async function rejoinIfBroken(ctx: Ctx, sb: SandboxRecord, ep: EndpointRecord, recreated: boolean): Promise<boolean> {
  const net = ctx.state.networks.get(ep.networkId)!;
  const rt = runtimeOf(ctx, net);
  const dnet = toDriverNetwork(net, rt.options);
  const dep = toDriverEndpoint(ep, rt.driver.parseEndpointOptions(ep.driverOpts));
  const dsb = toDriverSandbox(sb);
  if (!recreated && (await rt.driver.endpointIntact(dnet, dep, dsb))) return false;
  await rt.driver.leave(dnet, dep, dsb);
  const result = await rt.driver.join(dnet, dep, dsb);
  const { requiresGateway: _before, hostInterface: _oldHost, ...rest } = ep;
  ctx.state.putEndpoint({ ...rest, ...joinOutcome(result) });
  return true;
}

async function forgetSandbox(ctx: Ctx, sb: SandboxRecord, endpoints: EndpointRecord[]): Promise<void> {
  // Forced: the namespace is gone, so kernel clean-up inside it can only fail; the records go regardless.
  for (const ep of endpoints) await removeEndpoint(ctx, ctx.state.networks.get(ep.networkId)!, sb, ep, true);
  await ctx.discovery.sandboxRemoved(sb.id);
  await ctx.files.remove(sb.id);
  await ctx.repo.deleteSandbox(sb);
  ctx.state.deleteSandbox(sb.id);
}

/**
 * A handed-over interface that is gone means its container's namespace died while the daemon was down
 * (the runtime's Leave / DeleteEndpoint then failed, and it forgot the endpoint): the record and its
 * address claims go, so the runtime's IPAM can give the address out again.
 */
async function dropVanishedAttachments(ctx: Ctx, report: ReconcileReport): Promise<void> {
  for (const att of [...ctx.state.attachments.values()]) {
    const net = ctx.state.networks.get(att.networkId)!;
    const rt = runtimeOf(ctx, net);
    if (!att.joined || rt.error !== undefined || !rt.driver.handoffPresent) continue;
    if (await rt.driver.handoffPresent(toDriverNetwork(net, rt.options), toHandoffEndpoint(att, rt))) continue;
    ctx.logger.warn('the interface of a container endpoint is gone: removing it', { network: net.name, endpoint: att.id, owner: att.owner });
    await removeAttachment(ctx, net.id, att.id);
    report.staleRecordsRemoved++;
  }
}

/** Links carrying the daemon's owner mark that no record accounts for; unmarked links are never touched. */
async function removeLeakedLinks(ctx: Ctx, report: ReconcileReport): Promise<void> {
  const owned = new Set<string>();
  const mark = ctx.ownerGroup ?? DEFAULT_OWNER_GROUP;
  for (const driver of ctx.drivers.values()) {
    const nets = [...ctx.state.networks.values()].filter((n) => n.driver === driver.name && !n.configOnly);
    const eps = nets.flatMap((n) => {
      const rt = runtimeOf(ctx, n);
      return [
        ...ctx.state.endpointsOfNetwork(n.id).map((ep) => toDriverEndpoint(ep, rt.driver.parseEndpointOptions(ep.driverOpts))),
        // The runtime (Docker) holds these containers' interfaces; their host ends are ours and stay.
        ...ctx.state.attachmentsOfNetwork(n.id).filter((att) => att.joined).map((att) => toHandoffEndpoint(att, rt)),
      ];
    });
    driver.ownedLinks(nets.map((n) => toDriverNetwork(n, runtimeOf(ctx, n).options)), eps).forEach((l) => owned.add(l));
  }
  const errors = new TeardownErrors();
  for (const link of await ctx.kernel.linkList(null)) {
    if (link.group !== mark || owned.has(link.name)) continue;
    await errors.attempt(`remove leaked link ${link.name}`, () => ctx.kernel.linkDel(null, link.name));
    report.linksRemoved.push(link.name);
  }
  if (errors.list.length > 0) ctx.logger.warn('some leaked links could not be removed', { errors: errors.list });
}

async function removeLeakedNamespaces(ctx: Ctx, report: ReconcileReport): Promise<void> {
  const dir = join(ctx.execRoot, 'netns');
  const known = new Set(ctx.state.sandboxes.keys()); // adopted sandboxes keep their pins here too
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (known.has(entry)) continue;
    await ctx.kernel.deleteNetns(join(dir, entry));
    report.namespacesRemoved.push(entry);
  }
  const filesDir = join(ctx.execRoot, 'sandboxes');
  const allKnown = new Set(ctx.state.sandboxes.keys());
  for (const entry of await readdir(filesDir).catch(() => [] as string[])) {
    if (!allKnown.has(entry)) await ctx.files.remove(entry);
  }
}
