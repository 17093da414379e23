/**
 * The pure nft compiler: golden scripts (regenerate with CNM_UPDATE_GOLDEN=1) and the element logic.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_CHAINS,
  compileAddNetwork,
  compileBase,
  compileFull,
  compileRemoveNetwork,
  networkElements,
  type NetworkElements,
} from '../../src/firewall/compile.js';
import type { FirewallNetwork } from '../../src/firewall/types.js';
import { httpStatusOf } from '../../src/errors.js';
import { assertGolden } from '../helpers/golden.js';

function golden(name: string, actual: string): void {
  assertGolden('firewall', name, actual);
}

function net(n: number, over: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: n.toString(16).padStart(64, '0'),
    bridge: `cnmbr-${n}`,
    ipv4Subnets: [`10.${n}.0.0/24`],
    ipv6Subnets: [],
    icc: true,
    masquerade: true,
    internal: false,
    ...over,
  };
}

/** Element texts per set, for readable assertions. */
function texts(elements: NetworkElements): Record<string, string[]> {
  return Object.fromEntries(Object.entries(elements).map(([set, list]) => [set, list!.map((e) => e.text)]));
}

function rejects400(fn: () => unknown, match: RegExp): void {
  assert.throws(fn, (err: unknown) => httpStatusOf(err) === 400 && match.test((err as Error).message));
}

const SAMPLE: FirewallNetwork[] = [
  net(1, { ipv6Subnets: ['fd00:1::/64'] }),
  net(2, { icc: false, ipv4Subnets: ['10.2.0.0/24', '10.2.1.0/24'], ipv6Subnets: ['fd00:2::/64'] }),
  net(3, { internal: true, masquerade: false }),
  net(4, { hostIpv4: '192.0.2.10' }),
  net(5, { masquerade: false, bridge: 'br@x+y' }),
];

describe('firewall compiler: golden scripts', () => {
  it('base tables', () => golden('base.nft', compileBase()));
  it('base of the bridge table only', () => golden('base-bridge.nft', compileBase(['bridge'])));
  it('full ruleset for a mix of networks', () => golden('full.nft', compileFull(SAMPLE)));
  it('full ruleset with no networks is the base', () => assert.equal(compileFull([]), compileBase()));
  it('add a dual-stack network', () => golden('add-dual-stack.nft', compileAddNetwork(SAMPLE[0]!)));
  it('add an icc=false network', () => golden('add-no-icc.nft', compileAddNetwork(SAMPLE[1]!)));
  it('add an internal network', () => golden('add-internal.nft', compileAddNetwork(SAMPLE[2]!)));
  it('add a host_ipv4 network', () => golden('add-host-ipv4.nft', compileAddNetwork(SAMPLE[3]!)));
  it('remove a network (add-then-delete)', () => golden('remove-no-icc.nft', compileRemoveNetwork(SAMPLE[1]!)));
  it('remove restricted to the inet table', () =>
    golden('remove-inet-only.nft', compileRemoveNetwork(SAMPLE[1]!, ['inet'])));
});

describe('firewall compiler: elements', () => {
  it('a default network: bridge, same_bridge, masquerade', () => {
    assert.deepEqual(texts(networkElements(net(1))), {
      bridges: ['"cnmbr-1"'],
      same_bridge: ['"cnmbr-1" . "cnmbr-1"'],
      masq_v4: ['10.1.0.0/24'],
      masq_v6: [],
    });
  });

  it('IPv6 subnets go to the v6 sets, canonically written', () => {
    const e = texts(networkElements(net(1, { ipv6Subnets: ['FD00:0:0:0:0:0:0:0/64', 'fd00:1::/64'], icc: false })));
    assert.deepEqual(e.masq_v6, ['fd00::/64', 'fd00:1::/64']);
    assert.deepEqual(e.no_icc_v6, ['fd00::/64', 'fd00:1::/64']);
    assert.deepEqual(e.masq_v4, ['10.1.0.0/24']);
  });

  it('internal networks get no masquerade and no snat, even when asked', () => {
    const e = texts(networkElements(net(1, { internal: true, masquerade: true, hostIpv4: '192.0.2.1', ipv6Subnets: ['fd00::/64'] })));
    assert.deepEqual(e.internal, ['"cnmbr-1"']);
    assert.equal(e.masq_v4, undefined);
    assert.equal(e.masq_v6, undefined);
    assert.equal(e.snat_v4, undefined);
    assert.deepEqual(e.bridges, ['"cnmbr-1"']);
  });

  it('host_ipv4 uses the snat map instead of masquerade for IPv4 only', () => {
    const e = texts(networkElements(net(1, { hostIpv4: '192.0.2.1', ipv6Subnets: ['fd00::/64'] })));
    assert.deepEqual(e.snat_v4, ['10.1.0.0/24 : 192.0.2.1']);
    assert.equal(e.masq_v4, undefined);
    assert.deepEqual(e.masq_v6, ['fd00::/64']);
  });

  it('masquerade disabled: no nat elements at all (host_ipv4 then has no effect)', () => {
    const e = texts(networkElements(net(1, { masquerade: false, hostIpv4: '192.0.2.1' })));
    assert.deepEqual(Object.keys(e).sort(), ['bridges', 'same_bridge']);
  });

  it('IPv6 masquerades on its own when told (gateway_mode_ipv6 differs from gateway_mode_ipv4)', () => {
    const routed4 = texts(networkElements(net(1, { masquerade: false, masqueradeIpv6: true, ipv6Subnets: ['fd00::/64'] })));
    assert.equal(routed4.masq_v4, undefined);
    assert.deepEqual(routed4.masq_v6, ['fd00::/64']);
    const routed6 = texts(networkElements(net(1, { masquerade: true, masqueradeIpv6: false, ipv6Subnets: ['fd00::/64'] })));
    assert.deepEqual(routed6.masq_v4, ['10.1.0.0/24']);
    assert.equal(routed6.masq_v6, undefined);
    golden('add-gateway-modes.nft', compileAddNetwork(net(7, { masquerade: false, masqueradeIpv6: true, ipv6Subnets: ['fd00:7::/64'] })));
  });

  it('icc=false: subnets go to the bridge table, the bridge leaves same_bridge', () => {
    const e = texts(networkElements(net(1, { icc: false, ipv4Subnets: ['10.1.0.0/24', '10.9.0.0/16'] })));
    assert.deepEqual(e.no_icc_v4, ['10.1.0.0/24', '10.9.0.0/16']);
    assert.deepEqual(e.no_icc_v6, []);
    assert.equal(e.same_bridge, undefined);
  });

  it('a network without subnets still isolates its bridge', () => {
    const e = texts(networkElements(net(1, { ipv4Subnets: [] })));
    assert.deepEqual(e.bridges, ['"cnmbr-1"']);
    assert.deepEqual(e.masq_v4, []);
  });

  it('scripts contain no command for empty element lists', () => {
    const script = compileAddNetwork(net(1, { ipv4Subnets: [], masquerade: false }));
    assert.doesNotMatch(script, /\{ \}/);
    assert.equal(script.trim().split('\n').length, 2);
  });

  it('base chains are written the way nft lists them (isIntact compares them)', () => {
    const base = compileBase();
    for (const chain of BASE_CHAINS) {
      assert.ok(base.includes(`\t\t${chain.header}\n${chain.rules.map((r) => `\t\t${r}\n`).join('')}`), chain.name);
    }
  });

  it('remove = add then delete of the same elements', () => {
    const lines = compileRemoveNetwork(SAMPLE[3]!).trim().split('\n');
    const adds = lines.filter((l) => l.startsWith('add element'));
    const deletes = lines.filter((l) => l.startsWith('delete element'));
    assert.equal(adds.length + deletes.length, lines.length);
    assert.deepEqual(deletes.map((l) => l.replace(/^delete/, 'add')), adds);
    assert.ok(lines.indexOf(deletes[0]!) > lines.indexOf(adds.at(-1)!));
  });

  it('large sets are split over several commands', () => {
    const many = Array.from({ length: 1500 }, (_, i) =>
      net(i + 1, { bridge: `cnmbr-${i}`, ipv4Subnets: [`10.${Math.floor(i / 256)}.${i % 256}.0/24`] }),
    );
    const script = compileFull(many);
    assert.equal(script.match(/^add element inet cnm masq_v4 /gm)?.length, 2);
    assert.equal(script.match(/^add element inet cnm bridges /gm)?.length, 2);
  });
});

describe('firewall compiler: invalid input is rejected', () => {
  it('bridge names that could escape the quotes or act as wildcards', () => {
    for (const bridge of ['br"x', 'br x', 'br*', 'a;b', '', '.', '..', 'a-name-too-long16', 'br\nadd', 'br$x', 'br/x']) {
      rejects400(() => compileAddNetwork(net(1, { bridge })), /invalid interface name/);
    }
  });

  it('malformed subnets and addresses', () => {
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['10.1.0.1/24'] })), /host bits set, expected 10\.1\.0\.0\/24/);
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['10.1.0.0'] })), /missing \/prefix/);
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['10.1.0.0/33'] })), /prefix length/);
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['0.0.0.0/0'] })), /prefix length/);
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['fd00::/64'] })), /invalid IPv4 subnet/);
    rejects400(() => networkElements(net(1, { ipv6Subnets: ['10.1.0.0/24'] })), /invalid IPv6 subnet/);
    rejects400(() => networkElements(net(1, { ipv6Subnets: ['fd00::1/64'] })), /host bits set, expected fd00::\/64/);
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['10.1.0.0/24 }; flush ruleset; #'] })), /invalid IPv4 subnet/);
    rejects400(() => networkElements(net(1, { hostIpv4: '192.0.2.300' })), /invalid IPv4 address/);
    rejects400(() => networkElements(net(1, { hostIpv4: 'fd00::1' })), /invalid IPv4 address/);
    rejects400(() => networkElements(net(1, { id: 'abc' })), /invalid network id/);
  });

  it('overlapping subnets inside one network', () => {
    rejects400(() => networkElements(net(1, { ipv4Subnets: ['10.1.0.0/16', '10.1.2.0/24'] })), /overlapping subnets/);
  });

  it('overlaps between networks that share an interval set, naming both networks', () => {
    rejects400(
      () => compileFull([net(1, { ipv4Subnets: ['10.0.0.0/8'] }), net(2, { ipv4Subnets: ['10.2.0.0/24'] })]),
      new RegExp(`networks ${net(1).id} and ${net(2).id}\\) in set masq_v4`),
    );
  });

  it('overlapping subnets in different sets are left to the caller', () => {
    // Network 1 masquerades, network 2 is internal: no set holds both subnets, nft accepts it.
    assert.doesNotThrow(() =>
      compileFull([net(1, { ipv4Subnets: ['10.0.0.0/8'] }), net(2, { internal: true, ipv4Subnets: ['10.2.0.0/24'] })]),
    );
  });

  it('duplicate network ids and bridges', () => {
    rejects400(() => compileFull([net(1), net(1, { bridge: 'other', ipv4Subnets: [] })]), /duplicate network id/);
    rejects400(() => compileFull([net(1), net(2, { bridge: 'cnmbr-1' })]), /duplicate bridge/);
  });
});

describe('golden update mode', () => {
  it('is refused under CI, so a CI run can never rewrite a golden file and pass', async () => {
    const { goldenUpdateMode } = await import('../helpers/golden.js');
    assert.throws(() => goldenUpdateMode({ CNM_UPDATE_GOLDEN: '1', CI: 'true' }), /refused under CI/);
    assert.equal(goldenUpdateMode({ CNM_UPDATE_GOLDEN: '1' }), true);
    assert.equal(goldenUpdateMode({ CI: 'true' }), false);
  });
});
