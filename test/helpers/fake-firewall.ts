/** A Firewall test double that keeps the set of networks it was asked to hold. */
import type { Firewall, FirewallNetwork, FirewallPorts, FirewallService, SandboxBalancer } from '../../src/firewall/types.js';

/** An IPv4 service half under its id, an IPv6 one under "ID/6" (a dual-stack service is both). */
export function fakeServiceKey(svc: FirewallService): string {
  return svc.vip.includes(':') ? `${svc.id}/6` : svc.id;
}

export class RecordingFirewall implements Firewall {
  readonly networks = new Map<string, FirewallNetwork>();
  readonly services = new Map<string, FirewallService>();
  readonly ports = new Map<string, FirewallPorts>();
  readonly calls: string[] = [];
  intact = true;

  async ensureBase(): Promise<void> {
    this.calls.push('ensureBase');
  }
  async addNetwork(net: FirewallNetwork): Promise<void> {
    this.calls.push(`add ${net.bridge}`);
    this.networks.set(net.id, net);
  }
  async removeNetwork(net: FirewallNetwork): Promise<void> {
    this.calls.push(`remove ${net.bridge}`);
    this.networks.delete(net.id);
  }
  async setService(svc: FirewallService): Promise<void> {
    this.calls.push(`service ${svc.vip} ${svc.backends.length}`);
    this.services.set(fakeServiceKey(svc), svc);
  }
  async removeService(svc: FirewallService): Promise<void> {
    this.calls.push(`remove service ${svc.vip}`);
    this.services.delete(fakeServiceKey(svc));
  }
  async addPorts(p: FirewallPorts): Promise<void> {
    this.calls.push(`ports ${p.ports.length}`);
    this.ports.set(p.sandboxId, p);
  }
  async removePorts(p: FirewallPorts): Promise<void> {
    this.calls.push(`remove ports ${p.ports.length}`);
    this.ports.delete(p.sandboxId);
  }
  async reconcile(networks: FirewallNetwork[], services: FirewallService[] = [], ports: FirewallPorts[] = []): Promise<void> {
    this.calls.push(`reconcile ${networks.length}`);
    this.ports.clear();
    for (const p of ports) this.ports.set(p.sandboxId, p);
    this.networks.clear();
    for (const n of networks) this.networks.set(n.id, n);
    this.services.clear();
    for (const s of services) this.services.set(fakeServiceKey(s), s);
    this.intact = true;
  }
  async isIntact(): Promise<boolean> {
    return this.intact;
  }
  close(): void {}
}

/**
 * A SandboxBalancer test double: what each sandbox namespace holds (by netns path, each service half under
 * fakeServiceKey), and the calls. It checks its callers: a service whose backends are of another family
 * than its VIP is refused, as the compiler refuses it.
 */
export class RecordingSandboxBalancer implements SandboxBalancer {
  readonly tables = new Map<string, Map<string, FirewallService>>();
  readonly calls: string[] = [];
  failFor = new Set<string>();

  private table(netnsPath: string): Map<string, FirewallService> {
    if (this.failFor.has(netnsPath)) throw new Error(`balancer: ${netnsPath} fails (test)`);
    let t = this.tables.get(netnsPath);
    if (!t) this.tables.set(netnsPath, (t = new Map()));
    return t;
  }
  async setService(netnsPath: string, svc: FirewallService): Promise<void> {
    const v6 = svc.vip.includes(':');
    if (svc.backends.some((b) => b.includes(':') !== v6)) throw new Error(`balancer: backends of another family than ${svc.vip}`);
    this.calls.push(`set ${netnsPath} ${svc.vip} ${svc.backends.length}`);
    this.table(netnsPath).set(fakeServiceKey(svc), { ...svc, backends: [...svc.backends] });
  }
  async removeService(netnsPath: string, svc: FirewallService): Promise<void> {
    this.calls.push(`remove ${netnsPath} ${svc.vip}`);
    this.table(netnsPath).delete(fakeServiceKey(svc));
  }
  async replace(netnsPath: string, services: FirewallService[]): Promise<void> {
    this.calls.push(`replace ${netnsPath} ${services.length}`);
    const t = this.table(netnsPath);
    t.clear();
    for (const svc of services) t.set(fakeServiceKey(svc), { ...svc, backends: [...svc.backends] });
  }
  async clear(netnsPath: string): Promise<void> {
    this.calls.push(`clear ${netnsPath}`);
    this.table(netnsPath);
    this.tables.delete(netnsPath);
  }
  /** The backends (sorted) of the service half with this VIP in the sandbox, or undefined when it has none. */
  backendsAt(netnsPath: string, vip: string): string[] | undefined {
    const svc = [...(this.tables.get(netnsPath)?.values() ?? [])].find((s) => s.vip === vip);
    return svc ? [...svc.backends].sort() : undefined;
  }
}
