/**
 * NftFirewall over a recording fake runner that simulates just enough of nft: which cnm tables exist,
 * what `list chain` prints, and ENOENT for element commands on a missing table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_CHAINS, compileAddNetwork, compileFull, compileRemoveNetwork, type TableFamily } from '../../src/firewall/compile.js';
import { NftFirewall } from '../../src/firewall/nft-firewall.js';
import { normaliseElement, parseTableListing, type TableListing } from '../../src/firewall/listing.js';
import { nftError } from '../../src/firewall/nft-error.js';
import type { FirewallNetwork, FirewallService, NftRunner } from '../../src/firewall/types.js';
import { KernelError, httpStatusOf } from '../../src/errors.js';

const ENOENT_TEXT = 'Error: No such file or directory';

/**
 * Simulates just enough of nft for cnm's scripts: tables (their block syntax), elements, service maps
 * and chains, `list table` in nft's layout, and ENOENT for commands on a missing table.
 */
class FakeNftRunner implements NftRunner {
  readonly scripts: string[] = [];
  readonly tables = new Map<TableFamily, TableListing>();
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
    const list = /^list table (\S+) cnm$/.exec(script);
    if (list) return this.render(list[1] as TableFamily);
    if (script === 'list tables') return [...this.tables.keys()].map((f) => `table ${f} cnm\n`).join('');
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const block = /^table (\S+) cnm \{$/.exec(line);
      if (block) {
        const end = lines.indexOf('}', i);
        const body = lines.slice(i, end + 1).filter((l) => !l.trim().startsWith('#'));
        this.tables.set(block[1] as TableFamily, parseTableListing(body.join('\n')));
        i = end;
        continue;
      }
      const m = /^(add|delete|flush) (table|element|map|chain|rule) (\S+) cnm ?(\S*) ?(.*)$/.exec(line);
      if (!m) continue;
      const [, verb, what, family, name, rest] = m;
      if (what === 'table') {
        if (verb === 'delete') this.tables.delete(family as TableFamily);
        continue;
      }
      const t = this.tables.get(family as TableFamily);
      if (!t) throw nftError(ENOENT_TEXT);
      if (what === 'element') {
        const set = t.sets.get(name!);
        if (!set) throw nftError(ENOENT_TEXT);
        const items = rest!.replace(/^\{ | \}$/g, '').split(', ').map(normaliseElement);
        set.elements = verb === 'add' ? [...new Set([...set.elements, ...items])].sort() : set.elements.filter((e) => !items.includes(e));
      } else if (what === 'map') {
        if (verb === 'add' && !t.sets.has(name!)) t.sets.set(name!, { keyword: 'map', declaration: [/\{ (.*); \}/.exec(rest!)![1]!], elements: [] });
        if (verb === 'flush') t.sets.get(name!)!.elements = [];
        if (verb === 'delete') t.sets.delete(name!);
      } else if (what === 'chain') {
        if (verb === 'add' && !t.chains.has(name!)) t.chains.set(name!, { header: '', rules: [] });
        if (verb === 'flush') t.chains.get(name!)!.rules = [];
        if (verb === 'delete') t.chains.delete(name!);
      } else if (what === 'rule') {
        t.chains.get(name!)!.rules.push(rest!);
      }
    }
    return '';
  }

  close(): void {
    this.closed = true;
  }

  table(family: TableFamily): TableListing {
    return this.tables.get(family)!;
  }

  private render(family: TableFamily): string {
    const t = this.tables.get(family);
    if (!t) throw nftError(ENOENT_TEXT);
    const out = [`table ${family} cnm {`];
    for (const [name, set] of t.sets) {
      out.push(`\t${set.keyword} ${name} {`, ...set.declaration.map((d) => `\t\t${d}`));
      if (set.elements.length > 0) out.push(`\t\telements = { ${set.elements.join(',\n\t\t\t     ')} }`);
      out.push('\t}', '');
    }
    for (const [name, chain] of t.chains) {
      out.push(`\tchain ${name} {`, ...(chain.header ? [`\t\t${chain.header}`] : []), ...chain.rules.map((r) => `\t\t${r}`), '\t}');
    }
    out.push(...t.other.map((o) => `\t${o}`), '}');
    return out.join('\n') + '\n';
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
  it('removePorts forgets the tracked flows of the ports\' container addresses, after the elements are gone', async () => {
    const runner = new FakeNftRunner();
    const order: string[] = [];
    const fw = new NftFirewall(runner, { forgetFlowsTo: async (addresses) => void order.push(`flows ${addresses.join(',')} after ${mutations(runner).length} scripts`) });
    await fw.ensureBase();
    const ports = {
      sandboxId: '1'.repeat(64),
      ports: [
        { protocol: 'udp' as const, hostIp: '0.0.0.0', hostPort: 53, address: '10.0.0.2', containerPort: 53 },
        { protocol: 'udp' as const, hostIp: '::', hostPort: 53, address: 'fd00::2', containerPort: 53 },
      ],
    };
    await fw.addPorts(ports);
    assert.deepEqual(order, [], 'nothing forgotten when ports open');
    await fw.removePorts(ports);
    assert.deepEqual(order, ['flows 10.0.0.2,fd00::2 after 3 scripts']);
  });

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
    runner.table('inet').chains.get('forward')!.rules = []; // `nft flush chain inet cnm forward`
    assert.deepEqual((await fw.inspect()).states, { inet: 'damaged', bridge: 'intact' });
    assert.equal(await fw.isIntact(), false);
    await fw.ensureBase();
    const last = mutations(runner).at(-1)!;
    assert.match(last, /^table inet cnm \{$/m);
    assert.doesNotMatch(last, /table bridge/);
    assert.equal(await fw.isIntact(), true);

    const bridgeForward = BASE_CHAINS.find((c) => c.family === 'bridge')!;
    runner.table('bridge').chains.get('forward')!.rules = [...bridgeForward.rules, 'counter'];
    assert.deepEqual((await fw.inspect()).states, { inet: 'intact', bridge: 'damaged' });
  });

  it('reports a deleted table as missing', async () => {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.ensureBase();
    runner.tables.delete('bridge');
    assert.deepEqual((await fw.inspect()).states, { inet: 'intact', bridge: 'missing' });
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

describe('NftFirewall checks elements against the desired state', () => {
  const svc: FirewallService = { id: 'e'.repeat(64), vip: '10.1.0.100', ports: [{ protocol: 'tcp', port: 80 }], backends: ['10.1.0.2', '10.1.0.3'] };

  async function built(): Promise<{ runner: FakeNftRunner; fw: NftFirewall }> {
    const runner = new FakeNftRunner();
    const fw = new NftFirewall(runner);
    await fw.reconcile([net(1), net(2, { icc: true, ipv6Subnets: ['fd00:2::/64'] })], [svc]);
    await fw.addNetwork(net(3, { hostIpv4: '192.0.2.5', ipv4Subnets: ['10.3.0.0/24', '10.33.0.5/32'] }));
    return { runner, fw };
  }

  it('is intact after reconcile, add, remove and service changes', async () => {
    const { fw } = await built();
    assert.deepEqual(await fw.inspect(), { states: { inet: 'intact', bridge: 'intact' }, differences: [] });
    await fw.removeNetwork(net(1));
    await fw.setService({ ...svc, backends: ['10.1.0.9'] });
    assert.equal(await fw.isIntact(), true);
    await fw.removeService(svc);
    assert.equal(await fw.isIntact(), true);
  });

  it('a deleted element is drift, named in the differences', async () => {
    const { runner, fw } = await built();
    const bridges = runner.table('inet').sets.get('bridges')!;
    bridges.elements = bridges.elements.filter((e) => e !== '"cnmbr-2"');
    const report = await fw.inspect();
    assert.deepEqual(report.states, { inet: 'drifted', bridge: 'intact' });
    assert.deepEqual(report.differences, ['inet cnm: set bridges lacks "cnmbr-2"']);
    assert.equal(await fw.isIntact(), false);
  });

  it('an added element, a missing service slot, a foreign chain are drift', async () => {
    const { runner, fw } = await built();
    runner.table('bridge').sets.get('no_icc_v4')!.elements.push('10.99.0.0/24');
    assert.deepEqual((await fw.inspect()).differences, ['bridge cnm: set no_icc_v4 has extra 10.99.0.0/24']);
    runner.table('bridge').sets.get('no_icc_v4')!.elements.pop();
    runner.table('inet').sets.get('svc_eeeeeeeeeeeeeeee')!.elements.shift();
    assert.match((await fw.inspect()).differences.join(), /map svc_eeeeeeeeeeeeeeee lacks \d+ : 10\.1\.0\.\d/);
    await fw.reconcile([net(1), net(2, { icc: true, ipv6Subnets: ['fd00:2::/64'] }), net(3, { hostIpv4: '192.0.2.5', ipv4Subnets: ['10.3.0.0/24', '10.33.0.5/32'] })], [svc]);
    assert.equal(await fw.isIntact(), true);
    runner.table('inet').chains.set('intruder', { header: '', rules: ['accept'] });
    assert.deepEqual((await fw.inspect()).differences, ['inet cnm: unexpected chain intruder']);
  });

  it('ensureBase leaves a drifted table alone (its elements are for reconcile to fix)', async () => {
    const { runner, fw } = await built();
    runner.table('inet').sets.get('bridges')!.elements = [];
    const before = mutations(runner).length;
    await fw.ensureBase();
    assert.equal(mutations(runner).length, before);
  });

  it('a failed change does not alter the desired state', async () => {
    const { runner, fw } = await built();
    runner.failNext = nftError('Error: Could not process rule: Operation not permitted');
    await assert.rejects(fw.addNetwork(net(4)));
    assert.equal(await fw.isIntact(), true, 'network 4 is not expected');
  });
});

describe('parseTableListing', () => {
  it('reads sets (multi-line elements), maps and chains of a real `nft list table` and ignores other tables', () => {
    const listing = [
      'table inet cnm {',
      '\tset bridges {',
      '\t\ttype ifname',
      '\t\telements = { "cnm0",',
      '\t\t\t     "cnmbr-2" }',
      '\t}',
      '',
      '\tmap snat_v4 {',
      '\t\ttype ipv4_addr : ipv4_addr',
      '\t\tflags interval',
      '\t\telements = { 10.1.1.0/24 : 192.0.2.5, 10.8.0.5 : 192.0.2.5 }',
      '\t}',
      '',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
      '\t}',
      '',
      '\tflowtable ft {',
      '\t\thook ingress priority filter',
      '\t}',
      '}',
      'table inet other {',
      '\tchain x {',
      '\t}',
      '}',
    ].join('\n');
    const parsed = parseTableListing(listing);
    assert.deepEqual(parsed.sets.get('bridges'), { keyword: 'set', declaration: ['type ifname'], elements: ['"cnm0"', '"cnmbr-2"'] });
    assert.deepEqual(parsed.sets.get('snat_v4')?.elements, ['10.1.1.0/24 : 192.0.2.5', '10.8.0.5 : 192.0.2.5']);
    assert.deepEqual(parsed.chains.get('forward'), {
      header: 'type filter hook forward priority filter; policy accept;',
      rules: ['icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'],
    });
    assert.deepEqual([...parsed.chains.keys()], ['forward']);
    assert.deepEqual(parsed.other, ['flowtable ft {']);
  });

  it('normalises full-length prefixes as nft prints them', () => {
    assert.equal(normaliseElement('10.8.0.5/32 : 192.0.2.5'), '10.8.0.5 : 192.0.2.5');
    assert.equal(normaliseElement('fd00::5/128'), 'fd00::5');
    assert.equal(normaliseElement('fd00::/32'), 'fd00::/32');
    assert.equal(normaliseElement('10.0.0.0/8'), '10.0.0.0/8');
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
