/**
 * Service balancing inside a sandbox's own namespace, for networks whose VIP the host cannot carry (an
 * overlay: its bridge has no address and the host no layer-3 path onto it, by design). Each sandbox on
 * such a network gets one table `inet cnm_lb` in ITS namespace: a nat output chain with the same four VIP
 * lookups as the host's (`vip_ports`, `vip_any`, and their IPv6 twins) and, per service and family, the
 * same 256-slot map and `dnat … numgen random mod 256 map` chain as on the host (services.ts, rendezvous
 * slots: every host computes the same slots from the same backend list). A connection the sandbox opens
 * to VIP:port is translated to a backend before it leaves, so it travels the overlay like any other
 * packet of the sandbox, the backend sees the client's own address and answers it directly, and the
 * sandbox's conntrack turns the reply back into the VIP's. No masquerade, nothing on the host.
 *
 * Changing a service's backends rewrites only its slot map (one transaction in the sandbox); established
 * connections keep their backend (conntrack). A service without backends: its VIP is not translated and
 * gets no answer.
 */
import { SETS, VIP_RULES } from './compile.js';
import { compileRemoveService, compileSetService } from './services.js';
import type { FirewallService, NftRunner, SandboxBalancer } from './types.js';

/** The table in each sandbox's namespace. */
export const LB_TABLE = 'cnm_lb';
const VIP_SETS = new Set(['vips', 'vips6', 'vip_any', 'vip_any6', 'vip_ports', 'vip_ports6']);

/**
 * The table, its VIP maps and its chain, made when missing; the chain's four rules are rewritten in the
 * same transaction (flush + add), so repeating it never duplicates a rule.
 */
export function compileLbBase(): string {
  const table = `inet ${LB_TABLE}`;
  return [
    `add table ${table}`,
    ...SETS.filter((s) => VIP_SETS.has(s.name)).map((s) => `add ${s.keyword} ${table} ${s.name} { type ${s.type}; }`),
    // Before the routing re-check of locally generated packets (the same priority as the host's output chain).
    `add chain ${table} output { type nat hook output priority -100; policy accept; }`,
    `flush chain ${table} output`,
    ...VIP_RULES.map((rule) => `add rule ${table} output ${rule}`),
  ].join('\n') + '\n';
}

/** Create or update one service (one family) in a sandbox: the base, then the service's map and chain. */
export function compileLbSetService(svc: FirewallService): string {
  return compileLbBase() + compileSetService(svc, LB_TABLE);
}

/** Remove one service from a sandbox's table; idempotent (the base is made first so every delete finds its object). */
export function compileLbRemoveService(svc: FirewallService): string {
  return compileLbBase() + compileRemoveService(svc, LB_TABLE);
}

/** Exactly these services, whatever the sandbox held before: one transaction. */
export function compileLbReplace(services: readonly FirewallService[]): string {
  return compileLbClear() + compileLbBase() + services.map((svc) => compileSetService(svc, LB_TABLE)).join('');
}

/** Remove the whole table; idempotent. */
export function compileLbClear(): string {
  return `add table inet ${LB_TABLE}\ndelete table inet ${LB_TABLE}\n`;
}

/**
 * The balancer over nftables: a runner made for the sandbox's namespace for each call and closed after
 * it, so cnm holds no socket in a sandbox (a namespace must die with its sandbox or its container).
 */
export class NftSandboxBalancer implements SandboxBalancer {
  constructor(private readonly runnerFor: (netnsPath: string) => NftRunner) {}

  async setService(netnsPath: string, service: FirewallService): Promise<void> {
    return this.run(netnsPath, compileLbSetService(service));
  }

  async removeService(netnsPath: string, service: FirewallService): Promise<void> {
    return this.run(netnsPath, compileLbRemoveService(service));
  }

  async replace(netnsPath: string, services: FirewallService[]): Promise<void> {
    return this.run(netnsPath, compileLbReplace(services));
  }

  async clear(netnsPath: string): Promise<void> {
    return this.run(netnsPath, compileLbClear());
  }

  private async run(netnsPath: string, script: string): Promise<void> {
    const runner = this.runnerFor(netnsPath);
    try {
      await runner.run(script);
    } finally {
      runner.close();
    }
  }
}
