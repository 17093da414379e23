/**
 * Service VIPs balanced inside the sandboxes, on networks whose driver `balancesInSandboxes` (the overlay:
 * the host has no address or path onto it, so it cannot carry a VIP). Each sandbox on such a network holds,
 * in its own namespace, every vip service of the network with its current backends on every host
 * (firewall/sandbox-lb.ts). The controller keeps what each sandbox was given (ctx.balanced) and sends only
 * what changed: a sandbox joining or leaving the network, a service made or removed, a backend joining or
 * leaving on any host (one slot-map rewrite per sandbox). Start-up and the periodic check give every
 * such sandbox its whole list again in one transaction (`force`).
 */
import { errorMessage, TeardownErrors } from '../errors.js';
import type { FirewallService } from '../firewall/types.js';
import { followedNamespaceAlive } from './adopted-netns.js';
import { serviceBackends } from './cluster.js';
import { runtimeOf, type Ctx } from './context.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from './records.js';
import { firewallServicesOf } from './service-views.js';

/** An endpoint being connected (not in the state yet): a backend already, and its sandbox balances already. */
export interface BalanceChange {
  joining?: EndpointRecord;
}

/** True when the network's VIPs are balanced inside its sandboxes (a driver capability). */
export function balancedInSandboxes(ctx: Ctx, net: NetworkRecord): boolean {
  return runtimeOf(ctx, net).driver.balancesInSandboxes === true;
}

const keyOf = (fs: FirewallService) => `${fs.id}/${fs.vip.includes(':') ? 6 : 4}`;

/** What a sandbox with these endpoints balances: every vip service of each of their networks that balances in sandboxes. */
function wanted(ctx: Ctx, endpoints: readonly EndpointRecord[], change: BalanceChange): { on: boolean; services: Map<string, FirewallService> } {
  const services = new Map<string, FirewallService>();
  let on = false;
  for (const ep of endpoints) {
    const net = ctx.state.networks.get(ep.networkId);
    if (!net || !balancedInSandboxes(ctx, net) || ctx.networks.get(net.id)?.error !== undefined) continue;
    on = true;
    for (const svc of ctx.state.servicesOfNetwork(net.id)) {
      if (svc.mode !== 'vip') continue;
      for (const fs of firewallServicesOf(svc, serviceBackends(ctx, svc, change.joining))) services.set(keyOf(fs), fs);
    }
  }
  return { on, services };
}

/**
 * Brings one sandbox's balancing table to what its endpoints (default: its endpoints now) call for:
 * changed services rewritten, dropped ones removed, the table removed when nothing is left. With
 * `force`, the whole list again in one transaction whatever was sent before.
 */
export async function balanceSandbox(
  ctx: Ctx,
  sb: SandboxRecord,
  endpoints: readonly EndpointRecord[] = ctx.state.endpointsOfSandbox(sb.id),
  change: BalanceChange = {},
  force = false,
): Promise<void> {
  if (sb.hostNetwork) return;
  const sent = ctx.balanced.get(sb.id) ?? new Map<string, FirewallService>();
  const want = wanted(ctx, endpoints, change);
  if (want.services.size === 0 && sent.size === 0 && !(force && want.on)) return;
  // A followed namespace is entered only while its path still names it (CNI: a reused /proc path).
  if (sb.followsNetns !== undefined && !(await followedNamespaceAlive(ctx, sb))) {
    ctx.balanced.delete(sb.id);
    return;
  }
  ctx.balanced.set(sb.id, sent);
  if (force && want.services.size > 0) {
    sent.clear();
    await ctx.balancer.replace(sb.netnsPath, [...want.services.values()]);
    want.services.forEach((fs, key) => sent.set(key, fs));
  } else if (want.services.size === 0) {
    // Forgotten first: a namespace that is gone (a forced removal) leaves nothing to track.
    sent.clear();
    ctx.balanced.delete(sb.id);
    await ctx.balancer.clear(sb.netnsPath);
  } else {
    for (const [key, fs] of want.services) {
      const had = sent.get(key);
      if (had && JSON.stringify(had) === JSON.stringify(fs)) continue;
      sent.delete(key);
      await ctx.balancer.setService(sb.netnsPath, fs);
      sent.set(key, fs);
    }
    for (const [key, fs] of [...sent]) {
      if (want.services.has(key)) continue;
      await ctx.balancer.removeService(sb.netnsPath, fs);
      sent.delete(key);
    }
  }
  if (sent.size === 0) ctx.balanced.delete(sb.id);
}

/**
 * Every sandbox of this host on the network (and the one `joining` belongs to) brought up to date; one
 * sandbox that fails does not keep the others stale. Throws the failures together.
 */
export async function balanceNetworkSandboxes(ctx: Ctx, networkId: string, change: BalanceChange = {}, force = false): Promise<void> {
  const net = ctx.state.networks.get(networkId);
  if (!net || !balancedInSandboxes(ctx, net)) return;
  const errors = new TeardownErrors();
  for (const ep of ctx.state.endpointsOfNetwork(networkId)) {
    const sb = ctx.state.sandboxes.get(ep.sandboxId);
    if (sb) await errors.attempt(`balance services in sandbox ${sb.name}`, () => balanceSandbox(ctx, sb, undefined, change, force));
  }
  const joining = change.joining;
  const sb = joining && joining.networkId === networkId ? ctx.state.sandboxes.get(joining.sandboxId) : undefined;
  if (sb) {
    const endpoints = [...ctx.state.endpointsOfSandbox(sb.id), joining!];
    await errors.attempt(`balance services in sandbox ${sb.name}`, () => balanceSandbox(ctx, sb, endpoints, change, force));
  }
  errors.throwIfAny('service balancing not updated in every sandbox');
}

/** Start-up and the periodic check: every sandbox on a network that balances in sandboxes, whole lists. */
export async function balanceAllSandboxes(ctx: Ctx): Promise<void> {
  for (const sb of ctx.state.sandboxes.values()) {
    await balanceSandbox(ctx, sb, undefined, {}, true).catch((err: unknown) =>
      ctx.logger.error('service balancing not restored in a sandbox; tried again on the next check', { sandbox: sb.name, error: errorMessage(err) }),
    );
  }
}
