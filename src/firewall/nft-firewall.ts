/**
 * The Firewall over nftables: the pure compiler produces one script per operation and an NftRunner
 * applies it as one atomic transaction. Operations are serialised so that a reconcile never interleaves
 * with an element update. It remembers the desired state those operations built, so a check compares the
 * kernel's tables with it element by element.
 */
import { Mutex } from '../util/mutex.js';
import {
  TABLE_FAMILIES,
  TABLE_NAME,
  compileAddNetwork,
  compileBase,
  compileFull,
  compileRemoveNetwork,
  type TableFamily,
} from './compile.js';
import { compareListings, expectedListing, parseTableListing } from './listing.js';
import { isMissingObject } from './nft-error.js';
import { compileAddPorts, compileRemovePorts } from './ports.js';
import { compileRemoveService, compileSetService, serviceKey } from './services.js';
import type { FlowCleaner } from './conntrack.js';
import type { Firewall, FirewallNetwork, FirewallPorts, FirewallService, NftRunner } from './types.js';

/**
 * Per table: exactly the desired state; absent; base chains or sets missing or different ('damaged':
 * rebuilt by ensureBase); or base intact but elements / service objects differ from the desired state
 * ('drifted': a set element deleted or added by hand).
 */
export type TableState = 'intact' | 'missing' | 'damaged' | 'drifted';

export interface FirewallInspection {
  states: Record<TableFamily, TableState>;
  /** What differs, in words (empty when intact). */
  differences: string[];
}

export class NftFirewall implements Firewall {
  private readonly mutex = new Mutex();
  /** The desired state: what the last reconcile and every later change made it. */
  private readonly networks = new Map<string, FirewallNetwork>();
  private readonly services = new Map<string, FirewallService>();
  private readonly ports = new Map<string, FirewallPorts>();

  /** `flows`: forgets the conntrack entries of closed ports (none: they live until they time out). */
  constructor(
    private readonly runner: NftRunner,
    private readonly flows?: FlowCleaner,
  ) {}

  ensureBase(): Promise<void> {
    return this.mutex.run(async () => {
      const { states } = await this.readStates();
      // A damaged table (rules flushed, chain deleted, older layout) is replaced like a missing one; its
      // elements are lost, which isIntact() reported beforehand so the caller reconciles.
      const broken = TABLE_FAMILIES.filter((f) => states[f] === 'missing' || states[f] === 'damaged');
      if (broken.length > 0) await this.runner.run(compileBase(broken));
    });
  }

  async addNetwork(net: FirewallNetwork): Promise<void> {
    // Compiled (and validated) before queueing: invalid input is rejected without waiting or touching nft.
    const script = compileAddNetwork(net);
    await this.mutex.run(async () => {
      await this.runner.run(script);
      this.networks.set(net.id, net);
    });
  }

  async removeNetwork(net: FirewallNetwork): Promise<void> {
    const script = compileRemoveNetwork(net);
    await this.mutex.run(async () => {
      try {
        await this.runner.run(script);
      } catch (err) {
        if (!isMissingObject(err)) throw err;
        // A missing table holds none of this network's elements: remove from the tables that exist.
        const present = await this.presentTables();
        if (present.length === TABLE_FAMILIES.length) throw err;
        if (present.length > 0) await this.runner.run(compileRemoveNetwork(net, present));
      }
      this.networks.delete(net.id);
    });
  }

  async setService(service: FirewallService): Promise<void> {
    const script = compileSetService(service);
    await this.mutex.run(async () => {
      await this.runner.run(script);
      this.services.set(serviceKey(service), service);
    });
  }

  async removeService(service: FirewallService): Promise<void> {
    const script = compileRemoveService(service);
    await this.mutex.run(async () => {
      await this.runRemovalFromInet(script);
      this.services.delete(serviceKey(service));
    });
  }

  async addPorts(ports: FirewallPorts): Promise<void> {
    const script = compileAddPorts(ports);
    await this.mutex.run(async () => {
      await this.runner.run(script);
      this.ports.set(ports.sandboxId, ports);
    });
  }

  async removePorts(ports: FirewallPorts): Promise<void> {
    const script = compileRemovePorts(ports);
    await this.mutex.run(async () => {
      await this.runRemovalFromInet(script);
      this.ports.delete(ports.sandboxId);
      // After the elements are gone: no new flow can be translated to these addresses meanwhile.
      await this.flows?.forgetFlowsTo(ports.ports.map((p) => p.address));
    });
  }

  /** Run a removal from the inet table; without that table (flushed) there is nothing left to remove. */
  private async runRemovalFromInet(script: string): Promise<void> {
    try {
      await this.runner.run(script);
    } catch (err) {
      if (!isMissingObject(err) || (await this.presentTables()).includes('inet')) throw err;
    }
  }

  async reconcile(networks: FirewallNetwork[], services: FirewallService[] = [], ports: FirewallPorts[] = []): Promise<void> {
    const script = compileFull(networks, services, ports);
    await this.mutex.run(async () => {
      await this.runner.run(script);
      this.ports.clear();
      for (const p of ports) this.ports.set(p.sandboxId, p);
      this.networks.clear();
      for (const net of networks) this.networks.set(net.id, net);
      this.services.clear();
      for (const svc of services) this.services.set(serviceKey(svc), svc);
    });
  }

  /** True when both tables hold exactly the desired state: chains, sets, elements, service maps. */
  isIntact(): Promise<boolean> {
    return this.mutex.run(async () => {
      const { states } = await this.readStates();
      return TABLE_FAMILIES.every((f) => states[f] === 'intact');
    });
  }

  /** Each table's state and what differs from the desired state. */
  inspect(): Promise<FirewallInspection> {
    return this.mutex.run(() => this.readStates());
  }

  /**
   * One `list table` per command: nft 1.0.6 fails ("No such file or directory") on the second of several
   * list commands in one script, its cache filter only covering the first.
   */
  private async readStates(): Promise<FirewallInspection> {
    const states = {} as Record<TableFamily, TableState>;
    const differences: string[] = [];
    for (const family of TABLE_FAMILIES) {
      let output: string;
      try {
        output = await this.runner.run(`list table ${family} ${TABLE_NAME}`);
      } catch (err) {
        if (!isMissingObject(err)) throw err;
        states[family] = 'missing';
        differences.push(`${family} ${TABLE_NAME}: table is missing`);
        continue;
      }
      const expected = expectedListing(family, this.networks.values(), this.services.values(), this.ports.values());
      const diff = compareListings(family, expected, parseTableListing(output));
      states[family] = diff.structure.length > 0 ? 'damaged' : diff.content.length > 0 ? 'drifted' : 'intact';
      differences.push(...diff.structure, ...diff.content);
    }
    return { states, differences };
  }

  close(): void {
    this.runner.close();
  }

  private async presentTables(): Promise<readonly TableFamily[]> {
    const out = await this.runner.run('list tables');
    return TABLE_FAMILIES.filter((f) => out.split('\n').some((line) => line.trim() === `table ${f} ${TABLE_NAME}`));
  }
}
