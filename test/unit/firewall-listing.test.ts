/**
 * The desired state predicted in nft's listing format, checked against listings recorded from nft 1.0.6
 * (test/fixtures/nft/list-table-*.txt: `nft list table FAMILY cnm` after compileFull of the state below).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compareListings, expectedListing, parseTableListing } from '../../src/firewall/listing.js';
import type { FirewallNetwork, FirewallPorts, FirewallService } from '../../src/firewall/types.js';

const FIXTURES = new URL('../fixtures/nft/', import.meta.url);

const NETWORKS: FirewallNetwork[] = [
  { id: '1'.repeat(64), bridge: 'cnm0', ipv4Subnets: ['10.1.0.0/24'], ipv6Subnets: ['fd12:3456:789a::/64'], icc: true, masquerade: true, internal: false },
  { id: '2'.repeat(64), bridge: 'cnmbr-2', ipv4Subnets: ['10.1.1.0/24', '10.9.0.0/30'], ipv6Subnets: [], icc: false, masquerade: true, internal: false, hostIpv4: '192.0.2.5' },
  { id: '3'.repeat(64), bridge: 'cnmbr-3', ipv4Subnets: ['10.1.2.0/24'], ipv6Subnets: ['fd12:3456:789b::/64'], icc: false, masquerade: true, internal: true },
  { id: '4'.repeat(64), bridge: 'cnmbr-4', ipv4Subnets: ['10.1.3.0/24', '10.8.0.5/32'], ipv6Subnets: ['fd12:3456:789c::/64'], icc: true, masquerade: true, internal: false },
];
const SERVICES: FirewallService[] = [
  { id: 'e'.repeat(64), vip: '10.1.0.100', ports: [], backends: ['10.1.0.2', '10.1.0.3'] },
  { id: 'f'.repeat(64), vip: '10.1.0.101', ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 53 }], backends: ['10.1.0.4'] },
  { id: 'd'.repeat(64), vip: '10.1.0.102', ports: [], backends: [] },
  { id: 'e'.repeat(64), vip: 'fd12:3456:789a::100', ports: [], backends: ['fd12:3456:789a::2', 'fd12:3456:789a::3'] },
  { id: 'f'.repeat(64), vip: 'fd12:3456:789a::101', ports: [{ protocol: 'tcp', port: 80 }], backends: ['fd12:3456:789a::4'] },
];

const PORTS: FirewallPorts[] = [
  {
    sandboxId: 'a'.repeat(64),
    ports: [
      ...[8000, 8001, 8002].map((p) => ({ protocol: 'tcp' as const, hostIp: '0.0.0.0', hostPort: p, address: '10.1.0.2', containerPort: p })),
      { protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, address: '10.1.0.2', containerPort: 80 },
      { protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5353, address: '10.1.0.2', containerPort: 53 },
    ],
  },
  { sandboxId: 'b'.repeat(64), ports: [{ protocol: 'sctp', hostIp: '192.0.2.5', hostPort: 9000, address: '10.1.3.7', containerPort: 9000 }] },
  {
    sandboxId: 'c'.repeat(64),
    ports: [
      ...[8000, 8001].map((p) => ({ protocol: 'tcp' as const, hostIp: '::', hostPort: p, address: 'fd12:3456:789a::2', containerPort: p })),
      { protocol: 'tcp', hostIp: '::', hostPort: 8080, address: 'fd12:3456:789a::2', containerPort: 80 },
      { protocol: 'udp', hostIp: '::1', hostPort: 5353, address: 'fd12:3456:789a::2', containerPort: 53 },
      { protocol: 'tcp', hostIp: '2001:db8::5', hostPort: 443, address: 'fd12:3456:789c::7', containerPort: 8443 },
    ],
  },
];

function recorded(family: string) {
  return parseTableListing(readFileSync(new URL(`list-table-${family}.txt`, FIXTURES), 'utf8'));
}

describe('expectedListing against real nft listings', () => {
  for (const family of ['inet', 'bridge'] as const) {
    it(`predicts ${family} cnm exactly: elements, interval prefixes, concatenations, verdict and slot maps`, () => {
      const diff = compareListings(family, expectedListing(family, NETWORKS, SERVICES, PORTS), recorded(family));
      assert.deepEqual(diff, { structure: [], content: [] });
    });
  }

  it('names what a changed state would differ in', () => {
    const diff = compareListings('inet', expectedListing('inet', NETWORKS.slice(1), SERVICES.slice(1), PORTS.slice(1)), recorded('inet'));
    assert.deepEqual(diff.structure, []);
    assert.ok(diff.content.includes('inet cnm: set bridges has extra "cnm0"'), diff.content.join('\n'));
    assert.ok(diff.content.includes('inet cnm: unexpected set svc_eeeeeeeeeeeeeeee'), diff.content.join('\n'));
    assert.ok(diff.content.includes('inet cnm: unexpected chain svc_eeeeeeeeeeeeeeee'), diff.content.join('\n'));
    assert.ok(diff.content.some((l) => l.startsWith('inet cnm: map ports_keep has extra 0.0.0.0/0 . tcp . 8000-8002 : 10.1.0.2')), diff.content.join('\n'));
  });

  it('a missing base chain or set is structural', () => {
    const actual = recorded('bridge');
    actual.chains.delete('forward');
    actual.sets.delete('no_icc_v6');
    const diff = compareListings('bridge', expectedListing('bridge', NETWORKS, SERVICES), actual);
    assert.deepEqual(diff.structure, ['bridge cnm: chain forward is missing', 'bridge cnm: set no_icc_v6 is missing']);
  });
});
