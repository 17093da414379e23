/**
 * NftFirewall over a recording fake runner that simulates just enough of nft: which cnm tables exist,
 * what `list chain` prints, and ENOENT for element commands on a missing table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_CHAINS, compileAddNetwork, compileFull, compileRemoveNetwork, type TableFamily } from '../../src/firewall/compile.js';
import { NftFirewall, parseChainListing } from '../../src/firewall/nft-firewall.js';
import { nftError } from '../../src/firewall/nft-error.js';
import type { FirewallNetwork, NftRunner } from '../../src/firewall/types.js';
import { KernelError, httpStatusOf } from '../../src/errors.js';

const ENOENT_TEXT = 'Error: No such file or directory';

class FakeNftRunner implements NftRunner {
  readonly scripts: string[] = [];
  readonly tables = new Set<TableFamily>();
  /** Chains whose listing is altered: key "family chain" → rules the kernel "has". */
  readonly alteredRules = new Map<string, string[]>();
  failNext?: KernelError;
  delayMs = 0;
  closed = false;

  async run(script: string): Promise<string> {
    this.scripts.push(script);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const listChain = /^list chain (\S+) cnm (\S+)$/.exec(script);
    if (listChain) return this.listChain(listChain[1] as TableFamily, listChain[2]!);
    if (script === 'list tables') return [...this.tables].map((f) => `table ${f} cnm\n`).join('');
    for (const m of script.matchAll(/^delete table (\S+) cnm$/gm)) this.tables.delete(m[1] as TableFamily);
    for (const m of script.matchAll(/^table (\S+) cnm \{$/gm)) {
      this.tables.add(m[1] as TableFamily);
      for (const key of [...this.alteredRules.keys()]) if (key.startsWith(`${m[1]} `)) this.alteredRules.delete(key);
    }
    for (const m of script.matchAll(/^(?:add|delete) element (\S+) cnm /gm)) {
      if (!this.tables.has(m[1] as TableFamily)) throw nftError(ENOENT_TEXT);
    }
    return '';
  }

  close(): void {
    this.closed = true;
  }

  private listChain(family: TableFamily, name: string): string {
    const spec = BASE_CHAINS.find((c) => c.family === family && c.name === name);
    if (!this.tables.has(family) || !spec) throw nftError(ENOENT_TEXT);
    const rules = this.alteredRules.get(`${family} ${name}`) ?? spec.rules;
    return `table ${family} cnm {\n\tchain ${name} {\n\t\t${spec.header}\n${rules.map((r) => `\t\t${r}\n`).join('')}\t}\n}\n`;
  }
}

function net(n: number, over: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: n.toString(16).padStart(64, '0'),
    bridge: `cnmbr-${n}`,
    ipv4Subnets: [`10.${n}.0.0/24`],
    ipv6Subnets: [],
    icc: false,
    masquerade: true,
    internal: false,
    ...over,
  };
}

function mutations(runner: FakeNftRunner): string[] {
  return runner.scripts.filter((s) => !s.startsWith('list '));
}

describe('NftFirewall', () => {
  it('ensureBase creates both tables in one script, then is a no-op', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    assert.equal(await fw.isIntact(), false);
    await fw.ensureBase();
    assert.equal(mutations(runner).length, 1);
    assert.match(mutations(runner)[0]!, /^table inet cnm \{$/m);
    assert.match(mutations(runner)[0]!, /^table bridge cnm \{$/m);
    assert.equal(await fw.isIntact(), true);
    await fw.ensureBase();
    assert.equal(mutations(runner).length, 1, 'no script when intact');
  });

  it('detects flushed or altered chains and ensureBase replaces only that table', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.ensureBase();
    runner.alteredRules.set('inet forward', []); // `nft flush chain inet cnm forward`
    assert.deepEqual(await fw.inspect(), { inet: 'damaged', bridge: 'intact' });
    assert.equal(await fw.isIntact(), false);
    await fw.ensureBase();
    const last = mutations(runner).at(-1)!;
    assert.match(last, /^table inet cnm \{$/m);
    assert.doesNotMatch(last, /table bridge/);
    assert.equal(await fw.isIntact(), true);

    const bridgeForward = BASE_CHAINS.find((c) => c.family === 'bridge')!;
    runner.alteredRules.set('bridge forward', [...bridgeForward.rules, 'counter']);
    assert.deepEqual(await fw.inspect(), { inet: 'intact', bridge: 'damaged' });
  });

  it('reports a deleted table as missing', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.ensureBase();
    runner.tables.delete('bridge');
    assert.deepEqual(await fw.inspect(), { inet: 'intact', bridge: 'missing' });
  });

  it('add and reconcile run exactly one compiled script each', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.reconcile([net(1), net(2)]);
    await fw.addNetwork(net(3));
    assert.deepEqual(runner.scripts, [compileFull([net(1), net(2)]), compileAddNetwork(net(3))]);
  });

  it('removeNetwork is idempotent and succeeds when the tables are gone', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.reconcile([net(1)]);
    await fw.removeNetwork(net(1));
    await fw.removeNetwork(net(1));
    assert.deepEqual(mutations(runner).slice(1), [compileRemoveNetwork(net(1)), compileRemoveNetwork(net(1))]);

    runner.tables.clear();
    await fw.removeNetwork(net(1));
    assert.equal(runner.scripts.at(-1), 'list tables', 'nothing left to remove from');
  });

  it('removeNetwork falls back to the tables that still exist', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.reconcile([net(1)]);
    runner.tables.delete('bridge');
    await fw.removeNetwork(net(1));
    assert.equal(runner.scripts.at(-1), compileRemoveNetwork(net(1), ['inet']));
  });

  it('removeNetwork passes other kernel errors through', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.reconcile([net(1)]);
    runner.failNext = nftError('Error: Could not process rule: Operation not permitted');
    await assert.rejects(fw.removeNetwork(net(1)), (err: unknown) => err instanceof KernelError && err.errno === 'EPERM');
  });

  it('rejects invalid networks before touching nft', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await assert.rejects(fw.addNetwork(net(1, { bridge: 'bad"name' })), (err: unknown) => httpStatusOf(err) === 400);
    await assert.rejects(fw.reconcile([net(1), net(1)]), (err: unknown) => httpStatusOf(err) === 400);
    assert.equal(runner.scripts.length, 0);
  });

  it('serialises operations: a slow reconcile finishes before the next add starts', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    runner.delayMs = 20;
    const order: string[] = [];
    await Promise.all([
      fw.reconcile([net(1)]).then(() => order.push('reconcile')),
      fw.addNetwork(net(2)).then(() => order.push('add')),
      fw.removeNetwork(net(1)).then(() => order.push('remove')),
    ]);
    assert.deepEqual(order, ['reconcile', 'add', 'remove']);
    assert.deepEqual(runner.scripts, [compileFull([net(1)]), compileAddNetwork(net(2)), compileRemoveNetwork(net(1))]);
  });

  it('close closes the runner', () => {
    const runner = new FakeNftRunner();
    new NftFirewall(runner).close();
    assert.equal(runner.closed, true);
  });
});

describe('parseChainListing', () => {
  it('reads header and rules per family and chain, ignoring other tables', () => {
    const listing = [
      'table inet cnm {',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\tiifname . oifname @same_bridge accept',
      '\t\toifname @bridges drop',
      '\t}',
      '}',
      'table inet other {',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy drop;',
      '\t\taccept',
      '\t}',
      '}',
      'table bridge cnm {',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t}',
      '}',
    ].join('\n');
    const parsed = parseChainListing(listing);
    assert.deepEqual([...parsed.keys()], ['inet forward', 'bridge forward']);
    assert.deepEqual(parsed.get('inet forward'), {
      header: 'type filter hook forward priority filter; policy accept;',
      rules: ['iifname . oifname @same_bridge accept', 'oifname @bridges drop'],
    });
    assert.deepEqual(parsed.get('bridge forward')?.rules, []);
  });
});

describe('nftError', () => {
  it('keeps nft text and recognises errno names', () => {
    const err = nftError('/dev/stdin:1:1-3: Error: Could not process rule: File exists\nadd element ...\n');
    assert.equal(err.errno, 'EEXIST');
    assert.match(err.message, /File exists\nadd element/);
    assert.equal(httpStatusOf(err), 500);
    assert.equal(nftError('Error: syntax error, unexpected element').errno, undefined);
  });
});
