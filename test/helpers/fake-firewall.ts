/** A Firewall test double that keeps the set of networks it was asked to hold. */
import type { Firewall, FirewallNetwork } from '../../src/firewall/types.js';

export class RecordingFirewall implements Firewall {
  readonly networks = new Map<string, FirewallNetwork>();
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
  async reconcile(networks: FirewallNetwork[]): Promise<void> {
    this.calls.push(`reconcile ${networks.length}`);
    this.networks.clear();
    for (const n of networks) this.networks.set(n.id, n);
    this.intact = true;
  }
  async isIntact(): Promise<boolean> {
    return this.intact;
  }
  close(): void {}
}
