/**
 * Published ports in nftables: map elements per sandbox (golden scripts; regenerate with
 * CNM_UPDATE_GOLDEN=1), interval elements for runs, the listing check covering the port maps.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileFull } from '../../src/firewall/compile.js';
import { expectedListing, compareListings, parseTableListing } from '../../src/firewall/listing.js';
import { compileAddPorts, compileRemovePorts, portElements } from '../../src/firewall/ports.js';
import type { FirewallNetwork, FirewallPorts } from '../../src/firewall/types.js';
import { httpStatusOf } from '../../src/errors.js';
import { assertGolden } from '../helpers/golden.js';

const SB1 = '1'.repeat(64);
const SB2 = '2'.repeat(64);

const NET: FirewallNetwork = {
  id: 'a'.repeat(64),
  bridge: 'cnmbr-1',
  ipv4Subnets: ['10.1.0.0/24'],
  ipv6Subnets: [],
  icc: true,
  masquerade: true,
  internal: false,
};

/** 8000-8002 kept (one interval), 9090 kept, 8080→80 and 8443→443 moved, a UDP port on 127.0.0.1. */
const WEB: FirewallPorts = {
  sandboxId: SB1,
  ports: [
    ...[8000, 8001, 8002].map((p) => ({ protocol: 'tcp' as const, hostIp: '0.0.0.0', hostPort: p, address: '10.1.0.2', containerPort: p })),
    { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 9090, address: '10.1.0.2', containerPort: 9090 },
    { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, address: '10.1.0.2', containerPort: 80 },
    { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8443, address: '10.1.0.2', containerPort: 443 },
    { protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5353, address: '10.1.0.2', containerPort: 5353 },
  ],
};

/** IPv6: 8080→80 on ::, a kept range on ::, a UDP port on ::1, one on a host address written long-hand. */
const WEB6: FirewallPorts = {
  sandboxId: SB2,
  ports: [
    { protocol: 'tcp', hostIp: '::', hostPort: 8080, address: 'fd00:1::2', containerPort: 80 },
    ...[8000, 8001].map((p) => ({ protocol: 'tcp' as const, hostIp: '::', hostPort: p, address: 'fd00:1::2', containerPort: p })),
    { protocol: 'udp', hostIp: '::1', hostPort: 5353, address: 'fd00:1::2', containerPort: 5353 },
    { protocol: 'sctp', hostIp: '2001:DB8:0:0::7', hostPort: 9000, address: 'FD00:1:0::2', containerPort: 9000 },
    // 8081: the golden scripts are loaded into one kernel in a row, where 8080 is WEB's.
    { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8081, address: '10.1.0.3', containerPort: 80 },
  ],
};

const DNS: FirewallPorts = {
  sandboxId: SB2,
  ports: [{ protocol: 'udp', hostIp: '192.0.2.7', hostPort: 53, address: '10.1.0.3', containerPort: 53 }],
};

describe('published ports: compiled map elements', () => {
  it('add one sandbox\'s ports', () => assertGolden('firewall', 'ports-add.nft', compileAddPorts(WEB)));
  it('remove them (idempotent: add then delete)', () => assertGolden('firewall', 'ports-remove.nft', compileRemovePorts(WEB)));
  it('full ruleset with networks and ports', () => assertGolden('firewall', 'full-ports.nft', compileFull([NET], [], [WEB, DNS])));

  it('a run of consecutive kept ports is one interval element; single ports one hash element each', () => {
    const e = portElements(WEB);
    assert.deepEqual(e.ports_keep.map((x) => x.text), ['0.0.0.0/0 . tcp . 8000-8002 : 10.1.0.2']);
    assert.deepEqual(e.ports_any.map((x) => x.text), ['tcp . 8080 : 10.1.0.2 . 80', 'tcp . 8443 : 10.1.0.2 . 443', 'tcp . 9090 : 10.1.0.2 . 9090']);
    assert.deepEqual(e.ports_addr.map((x) => x.text), ['127.0.0.1 . udp . 5353 : 10.1.0.2 . 5353']);
    assert.deepEqual(portElements(DNS).ports_addr.map((x) => x.text), ['192.0.2.7 . udp . 53 : 10.1.0.3 . 53']);
  });

  it('a range published on one address does not merge with the same ports of another address or protocol', () => {
    const e = portElements({
      sandboxId: SB1,
      ports: [
        { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 10, address: '10.1.0.2', containerPort: 10 },
        { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 11, address: '10.1.0.2', containerPort: 11 },
        { protocol: 'tcp', hostIp: '192.0.2.1', hostPort: 11, address: '10.1.0.2', containerPort: 11 },
      ],
    });
    assert.deepEqual([e.ports_keep.length, e.ports_any.length, e.ports_addr.length], [0, 2, 1]);
  });

  it('IPv6 ports go to the maps suffixed 6, addresses canonical; IPv4 ones of the same sandbox stay in theirs', () => {
    const e = portElements(WEB6);
    assert.deepEqual(e.ports_keep6.map((x) => x.text), ['::/0 . tcp . 8000-8001 : fd00:1::2']);
    assert.deepEqual(e.ports_any6.map((x) => x.text), ['tcp . 8080 : fd00:1::2 . 80']);
    assert.deepEqual(e.ports_addr6.map((x) => x.text), ['2001:db8::7 . sctp . 9000 : fd00:1::2 . 9000', '::1 . udp . 5353 : fd00:1::2 . 5353']);
    assert.deepEqual(e.ports_any.map((x) => x.text), ['tcp . 8081 : 10.1.0.3 . 80']);
    assert.deepEqual([e.ports_keep.length, e.ports_addr.length], [0, 0]);
    assertGolden('firewall', 'ports-add-ipv6.nft', compileAddPorts(WEB6));
    // The listing check expects them too.
    const expected = expectedListing('inet', [NET], [], [WEB6]);
    assert.deepEqual(expected.sets.get('ports_any6')!.elements, ['tcp . 8080 : fd00:1::2 . 80']);
  });

  it('a host address and a container address of different families: 400', () => {
    for (const [hostIp, address] of [['::', '10.1.0.2'], ['0.0.0.0', 'fd00::2'], ['::1', '10.1.0.2']] as const) {
      assert.throws(
        () => compileAddPorts({ sandboxId: SB1, ports: [{ protocol: 'tcp', hostIp, hostPort: 1, address, containerPort: 1 }] }),
        (err: unknown) => httpStatusOf(err) === 400 && /different families/.test((err as Error).message),
      );
    }
  });

  it('bad input is a 400 before any script exists', () => {
    const bad = (over: Partial<FirewallPorts['ports'][number]>) => ({ sandboxId: SB1, ports: [{ ...WEB.ports[0]!, ...over }] });
    for (const p of [bad({ hostPort: 0 }), bad({ containerPort: 65536 }), bad({ address: '10.1.0.2/24' }), bad({ hostIp: 'fe80::1%eth0' }), bad({ address: '::/0' }), bad({ protocol: 'icmp' as 'tcp' })]) {
      assert.throws(() => compileAddPorts(p), (err: unknown) => httpStatusOf(err) === 400);
    }
    assert.throws(() => compileAddPorts({ sandboxId: 'x', ports: [] }), (err: unknown) => httpStatusOf(err) === 400);
  });

  it('the listing check expects the port elements: a deleted one is reported, an intact listing is not', () => {
    const expected = expectedListing('inet', [NET], [], [WEB]);
    const keep = expected.sets.get('ports_keep')!;
    assert.deepEqual(keep.elements, ['0.0.0.0/0 . tcp . 8000-8002 : 10.1.0.2']);
    assert.deepEqual(expected.sets.get('ports_addr')!.elements, ['127.0.0.1 . udp . 5353 : 10.1.0.2 . 5353']);
    assert.deepEqual(compareListings('inet', expected, expected), { structure: [], content: [] });
    // As nft lists it, one element missing, one foreign.
    const listed = parseTableListing(
      [
        'table inet cnm {',
        '\tmap ports_keep {',
        '\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr',
        '\t\tflags interval',
        '\t\telements = { 192.0.2.9 . tcp . 1-2 : 10.1.0.9 }',
        '\t}',
        '}',
      ].join('\n'),
    );
    const diff = compareListings('inet', { ...expected, sets: new Map([['ports_keep', keep]]), chains: new Map() }, listed);
    assert.deepEqual(diff.content, [
      'inet cnm: map ports_keep lacks 0.0.0.0/0 . tcp . 8000-8002 : 10.1.0.2',
      'inet cnm: map ports_keep has extra 192.0.2.9 . tcp . 1-2 : 10.1.0.9',
    ]);
  });
});
