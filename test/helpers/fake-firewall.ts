/** A Firewall test double that keeps the set of networks it was asked to hold. */
import type { Firewall, FirewallNetwork, FirewallPorts, FirewallService } from '../../src/firewall/types.js';

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
