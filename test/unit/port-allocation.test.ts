/** Host ports for published ports: requested ones checked, free ones chosen; all or nothing. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allocateHostPorts as allocate, publishedIn, type ResolvedPortRequest } from '../../src/controller/port-allocation.js';
import type { PublishedPort } from '../../src/controller/records.js';
import type { PortBindingRequest } from '../../src/controller/types.js';
import { parsePortRangeSysctl, parseProcNet, parseReservedPorts, parseSctpEndpoints, type HostPortFacts } from '../../src/kernel/host-ports.js';
import { httpStatusOf } from '../../src/errors.js';

const FACTS: HostPortFacts = { ephemeral: { start: 40000, end: 40009 }, reserved: [{ start: 40000, end: 40004 }], listeners: [] };
const first = () => 0;
const allocateHostPorts = (r: ResolvedPortRequest[], taken: PublishedPort[], facts: HostPortFacts, start: (span: number) => number) =>
  allocate(r, publishedIn(taken), facts, start);

function req(over: Partial<PortBindingRequest> & { hostIps?: string[] }): ResolvedPortRequest {
  const { hostIp, hostIps, ...rest } = over;
  return { protocol: 'tcp', containerPort: 80, hostPortStart: 8080, hostPortEnd: 8080, ...rest, hostIps: hostIps ?? [hostIp ?? '0.0.0.0'] };
}

function conflict(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => httpStatusOf(err) === 409 && message.test((err as Error).message));
}

describe('host port allocation', () => {
  it('a requested port is granted when free', () => {
    assert.deepEqual(allocateHostPorts([req({})], [], FACTS, first), [{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }]);
  });

  it('published by cnm: the same port on the same, a wildcard or a covered address conflicts; another protocol or address does not', () => {
    const taken = [{ protocol: 'tcp' as const, containerPort: 80, hostIp: '127.0.0.1', hostPort: 8080 }];
    conflict(() => allocateHostPorts([req({ hostIp: '127.0.0.1' })], taken, FACTS, first), /^Bind for 127\.0\.0\.1:8080 failed: port is already allocated$/);
    conflict(() => allocateHostPorts([req({})], taken, FACTS, first), /port is already allocated/);
    assert.equal(allocateHostPorts([req({ protocol: 'udp' })], taken, FACTS, first).length, 1);
    assert.equal(allocateHostPorts([req({ hostIp: '192.0.2.1' })], taken, FACTS, first).length, 1);
  });

  it('a port a process listens on conflicts; twice in one request conflicts', () => {
    const facts = { ...FACTS, listeners: [{ protocol: 'tcp' as const, address: '0.0.0.0', port: 8080 }] };
    conflict(() => allocateHostPorts([req({ hostIp: '192.0.2.1' })], [], facts, first), /address already in use/);
    assert.equal(allocateHostPorts([req({ protocol: 'udp' })], [], facts, first).length, 1);
    conflict(() => allocateHostPorts([req({}), req({ containerPort: 81 })], [], FACTS, first), /port is already allocated/);
  });

  it('no host port: the ephemeral range minus the reserved ports, skipping taken ones', () => {
    const taken = [{ protocol: 'tcp' as const, containerPort: 1, hostIp: '0.0.0.0', hostPort: 40005 }];
    const got = allocateHostPorts([req({ hostPortStart: 0, hostPortEnd: 0 }), req({ containerPort: 81, hostPortStart: 0, hostPortEnd: 0 })], taken, FACTS, first);
    assert.deepEqual(got.map((p) => p.hostPort), [40006, 40007]);
    const all = [40005, 40006, 40007, 40008, 40009].map((hostPort) => ({ ...taken[0]!, hostPort }));
    conflict(() => allocateHostPorts([req({ hostPortStart: 0, hostPortEnd: 0 })], all, FACTS, first), /all ports are allocated/);
  });

  it('a host range for one port gives its first free port (reserved ports allowed there: the user named them)', () => {
    const got = allocateHostPorts([req({ hostPortStart: 40001, hostPortEnd: 40003 })], [{ protocol: 'tcp', containerPort: 1, hostIp: '0.0.0.0', hostPort: 40001 }], FACTS, first);
    assert.equal(got[0]!.hostPort, 40002);
  });

  it('IPv6: :: covers every IPv6 address and no IPv4 one; messages bracket the address', () => {
    const taken = [{ protocol: 'tcp' as const, containerPort: 80, hostIp: '::', hostPort: 8080 }];
    conflict(() => allocateHostPorts([req({ hostIp: '::' })], taken, FACTS, first), /^Bind for \[::\]:8080 failed: port is already allocated$/);
    conflict(() => allocateHostPorts([req({ hostIp: '2001:db8::1' })], taken, FACTS, first), /^Bind for \[2001:db8::1\]:8080 failed/);
    assert.equal(allocateHostPorts([req({ hostIp: '0.0.0.0' })], taken, FACTS, first).length, 1);
    assert.equal(allocateHostPorts([req({ hostIp: '127.0.0.1' })], taken, FACTS, first).length, 1);
    const v4 = [{ protocol: 'tcp' as const, containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }];
    assert.equal(allocateHostPorts([req({ hostIp: '::1' })], v4, FACTS, first).length, 1);
  });

  it('0.0.0.0 and :: in one request share one port, free on both: a port taken on either family is skipped', () => {
    const both = { hostIps: ['0.0.0.0', '::'], hostPortStart: 0, hostPortEnd: 0 };
    const taken = [
      { protocol: 'tcp' as const, containerPort: 1, hostIp: '0.0.0.0', hostPort: 40005 },
      { protocol: 'tcp' as const, containerPort: 1, hostIp: '::1', hostPort: 40006 },
    ];
    const facts = { ...FACTS, listeners: [{ protocol: 'tcp' as const, address: '::', port: 40007 }] };
    assert.deepEqual(allocateHostPorts([req(both)], taken, facts, first), [
      { protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 40008 },
      { protocol: 'tcp', containerPort: 80, hostIp: '::', hostPort: 40008 },
    ]);
    conflict(() => allocateHostPorts([req({ hostIps: ['0.0.0.0', '::'], hostPortStart: 40006, hostPortEnd: 40006 })], taken, FACTS, first), /^Bind for \[::\]:40006 failed: port is already allocated$/);
  });
});

describe('host port facts from /proc', () => {
  it('parses the sysctls', () => {
    assert.deepEqual(parsePortRangeSysctl('32768\t60999\n'), { start: 32768, end: 60999 });
    assert.deepEqual(parseReservedPorts('8080,9000-9010\n'), [{ start: 8080, end: 8080 }, { start: 9000, end: 9010 }]);
    assert.deepEqual(parseReservedPorts('\n'), []);
  });

  it('TCP listeners (not connections), bound UDP sockets, IPv6 wildcard and v4-mapped', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
    ].join('\n');
    assert.deepEqual(parseProcNet(tcp, 'tcp', false), [{ protocol: 'tcp', address: '127.0.0.1', port: 8080 }]);
    const udp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07',
      '   1: 0000000000000000FFFF00000200000A:0036 00000000000000000000000000000000:0000 07',
      '   2: 00000000000000000000000001000000:0037 00000000000000000000000000000000:0000 07',
    ].join('\n');
    assert.deepEqual(parseProcNet(udp6, 'udp', true), [
      { protocol: 'udp', address: '::', port: 53 },
      { protocol: 'udp', address: '0.0.0.0', port: 53 },
      { protocol: 'udp', address: '10.0.0.2', port: 54 },
      { protocol: 'udp', address: '::1', port: 55 },
    ]);
    // fd00::1:2 (words in host order: 000000FD 00000000 00000000 02000100).
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 000000FD000000000000000002000100:1F90 00000000000000000000000000000000:0000 0A',
    ].join('\n');
    assert.deepEqual(parseProcNet(tcp6, 'tcp', true), [{ protocol: 'tcp', address: 'fd00::1:2', port: 8080 }]);
  });

  it('SCTP endpoints from /proc/net/sctp/eps: every bound address, a wildcard IPv6 one for both families', () => {
    const eps = [
      ' ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS',
      '00000000 00000000 1   10  31   8800      0 40001 0.0.0.0 ',
      '00000000 00000000 1   10  2    9900      0 40002 10.0.0.5 192.0.2.1 ',
      '00000000 00000000 2   10  5    7700      0 40003 0000:0000:0000:0000:0000:0000:0000:0000 ',
      '00000000 00000000 2   10  6    7701      0 40004 fd00:0000:0000:0000:0000:0000:0000:0002 ',
    ].join('\n');
    assert.deepEqual(parseSctpEndpoints(eps), [
      { protocol: 'sctp', address: '0.0.0.0', port: 8800 },
      { protocol: 'sctp', address: '10.0.0.5', port: 9900 },
      { protocol: 'sctp', address: '192.0.2.1', port: 9900 },
      { protocol: 'sctp', address: '::', port: 7700 },
      { protocol: 'sctp', address: '0.0.0.0', port: 7700 },
      { protocol: 'sctp', address: 'fd00::2', port: 7701 },
    ]);
    assert.deepEqual(parseSctpEndpoints(''), []);
    // A listener's SCTP port conflicts with an SCTP binding only.
    const facts = { ...FACTS, listeners: parseSctpEndpoints(eps) };
    conflict(() => allocateHostPorts([req({ protocol: 'sctp', hostPortStart: 8800, hostPortEnd: 8800 })], [], facts, first), /^Bind for 0\.0\.0\.0:8800\/sctp failed: address already in use/);
    assert.equal(allocateHostPorts([req({ protocol: 'tcp', hostPortStart: 8800, hostPortEnd: 8800 })], [], facts, first).length, 1);
  });
});
