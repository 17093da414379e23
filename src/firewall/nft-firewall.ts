/**
 * The Firewall over nftables: the pure compiler produces one script per operation and an NftRunner
 * applies it as one atomic transaction. Operations are serialised so that a reconcile never interleaves
 * with an element update.
 */
import { Mutex } from '../util/mutex.js';
import {
  BASE_CHAINS,
  TABLE_FAMILIES,
  TABLE_NAME,
  compileAddNetwork,
  compileBase,
  compileFull,
  compileRemoveNetwork,
  type ChainSpec,
  type TableFamily,
} from './compile.js';
import { isMissingObject } from './nft-error.js';
import { compileRemoveService, compileSetService } from './services.js';
import type { Firewall, FirewallNetwork, FirewallService, NftRunner } from './types.js';

export type TableState = 'intact' | 'missing' | 'damaged';

export class NftFirewall implements Firewall {
  private readonly mutex = new Mutex();

  constructor(private readonly runner: NftRunner) {}

  ensureBase(): Promise<void> {
    return this.mutex.run(async () => {
      const states = await this.readStates();
      // A damaged table (rules flushed, chain deleted, older layout) is replaced like a missing one; its
      // elements are lost, which isIntact() reported beforehand so the caller reconciles.
      const broken = TABLE_FAMILIES.filter((f) => states[f] !== 'intact');
      if (broken.length > 0) await this.runner.run(compileBase(broken));
    });
  }

  async addNetwork(net: FirewallNetwork): Promise<void> {
    // Compiled (and validated) before queueing: invalid input is rejected without waiting or touching nft.
    const script = compileAddNetwork(net);
    await this.mutex.run(() => this.runner.run(script));
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
    });
  }

  async setService(service: FirewallService): Promise<void> {
    const script = compileSetService(service);
    await this.mutex.run(() => this.runner.run(script));
  }

  async removeService(service: FirewallService): Promise<void> {
    const script = compileRemoveService(service);
    await this.mutex.run(async () => {
      try {
        await this.runner.run(script);
      } catch (err) {
        // Without cnm's inet table there is no service left to remove.
        if (!isMissingObject(err) || (await this.presentTables()).includes('inet')) throw err;
      }
    });
  }

  async reconcile(networks: FirewallNetwork[], services: FirewallService[] = []): Promise<void> {
    const script = compileFull(networks, services);
    await this.mutex.run(() => this.runner.run(script));
  }

  isIntact(): Promise<boolean> {
    return this.mutex.run(async () => {
      const states = await this.readStates();
      return TABLE_FAMILIES.every((f) => states[f] === 'intact');
    });
  }

  /** Per table: present with exactly cnm's base chains and rules, absent, or present but different. */
  inspect(): Promise<Record<TableFamily, TableState>> {
    return this.mutex.run(() => this.readStates());
  }

  private async readStates(): Promise<Record<TableFamily, TableState>> {
    const listed = new Map<string, ListedChain>();
    let somethingMissing = false;
    // One chain per command: nft 1.0.6 fails ("No such file or directory") on the second of several
    // `list chain` commands in one script, its cache filter only covering the first.
    for (const chain of BASE_CHAINS) {
      try {
        const output = await this.runner.run(`list chain ${chain.family} ${TABLE_NAME} ${chain.name}`);
        const found = parseChainListing(output).get(chainKey(chain.family, chain.name));
        if (found) listed.set(chainKey(chain.family, chain.name), found);
      } catch (err) {
        if (!isMissingObject(err)) throw err;
        somethingMissing = true;
      }
    }
    const present = somethingMissing ? await this.presentTables() : TABLE_FAMILIES;
    return tableStates(listed, new Set(present));
  }

  close(): void {
    this.runner.close();
  }

  private async presentTables(): Promise<readonly TableFamily[]> {
    const out = await this.runner.run('list tables');
    return TABLE_FAMILIES.filter((f) => out.split('\n').some((line) => line.trim() === `table ${f} ${TABLE_NAME}`));
  }
}

function tableStates(listed: Map<string, ListedChain>, present: Set<TableFamily>): Record<TableFamily, TableState> {
  const state = (family: TableFamily): TableState => {
    if (!present.has(family)) return 'missing';
    const ok = BASE_CHAINS.filter((c) => c.family === family).every((c) => chainMatches(listed.get(chainKey(c.family, c.name)), c));
    return ok ? 'intact' : 'damaged';
  };
  return { inet: state('inet'), bridge: state('bridge') };
}

function chainMatches(listed: ListedChain | undefined, spec: ChainSpec): boolean {
  return (
    listed !== undefined &&
    listed.header === spec.header &&
    listed.rules.length === spec.rules.length &&
    listed.rules.every((rule, i) => rule === spec.rules[i])
  );
}

export interface ListedChain {
  header: string;
  rules: string[];
}

function chainKey(family: string, chain: string): string {
  return `${family} ${chain}`;
}

/**
 * Parse `nft list chain` output (tables named cnm only) into family+chain → header and rules.
 * Exported for unit tests.
 */
export function parseChainListing(output: string): Map<string, ListedChain> {
  const chains = new Map<string, ListedChain>();
  let family: string | undefined;
  let current: ListedChain | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const table = /^table (\S+) (\S+) \{$/.exec(line);
    if (table) {
      family = table[2] === TABLE_NAME ? table[1] : undefined;
      continue;
    }
    const chain = /^chain (\S+) \{$/.exec(line);
    if (chain && family !== undefined) {
      current = { header: '', rules: [] };
      chains.set(chainKey(family, chain[1]!), current);
      continue;
    }
    if (line === '}') {
      current = undefined;
      continue;
    }
    if (!current || line === '') continue;
    if (current.header === '' && line.startsWith('type ')) current.header = line;
    else current.rules.push(line);
  }
  return chains;
}
