import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CnmError,
  InvalidParameterError,
  IpamExhaustedError,
  PoolOverlapError,
} from '../../src/errors.js';
import { DEFAULT_V4_POOLS, DefaultIpam, parseAddressPoolFlag, ulaPoolForHost } from '../../src/ipam/default.js';
import type { BasePool, PoolRequest } from '../../src/ipam/types.js';
import { parseCidr, subnetsOverlap } from '../../src/util/ip.js';

const ULA = ulaPoolForHost('test-host');
const newIpam = (v4Pools: BasePool[] = [...DEFAULT_V4_POOLS], v6Pools: BasePool[] = [ULA]) =>
  new DefaultIpam({ v4Pools, v6Pools });

/** Asserts the error class, its HTTP status and (optionally) its message. */
function throwsWith(fn: () => unknown, type: new (...args: never[]) => CnmError, status: number, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal(err.status, status);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('explicit pools', () => {
  it('reserves the subnet with the first usable address as gateway', () => {
    const ipam = newIpam();
    assert.deepEqual(ipam.requestPool({ family: 4, subnet: '10.10.0.0/16' }), {
      id: '10.10.0.0/16',
      family: 4,
      subnet: '10.10.0.0/16',
      gateway: '10.10.0.1',
      auxAddresses: {},
    });
    assert.deepEqual(ipam.requestPool({ family: 6, subnet: 'FD00:AB::/64' }), {
      id: 'fd00:ab::/64',
      family: 6,
      subnet: 'fd00:ab::/64',
      gateway: 'fd00:ab::1',
      auxAddresses: {},
    });
    assert.deepEqual(ipam.pools().map((p) => p.id), ['10.10.0.0/16', 'fd00:ab::/64']);
  });

  it('keeps an explicit gateway, range and aux addresses in canonical form', () => {
    const pool = newIpam().requestPool({
      family: 6,
      subnet: 'fd00:1::/64',
      ipRange: 'fd00:1:0:0:0:0:0:100/120',
      gateway: 'fd00:1::FFFE',
      auxAddresses: { router: 'fd00:1:0:0::5' },
    });
    assert.equal(pool.ipRange, 'fd00:1::100/120');
    assert.equal(pool.gateway, 'fd00:1::fffe');
    assert.deepEqual(pool.auxAddresses, { router: 'fd00:1::5' });
  });

  it('rejects host bits in the subnet like Docker (API >= 1.44), naming the canonical form', () => {
    throwsWith(() => newIpam().requestPool({ family: 4, subnet: '10.0.0.1/24' }), InvalidParameterError, 400,
      /invalid subnet 10\.0\.0\.1\/24: it should be 10\.0\.0\.0\/24/);
  });

  it('rejects malformed input with 400 and the reason', () => {
    const cases: Array<[PoolRequest, RegExp]> = [
      [{ family: 4, subnet: '10.0.0.0/33' }, /invalid CIDR block notation/],
      [{ family: 4, subnet: 'fd00::/64' }, /not an IPv4 block/],
      [{ family: 6, subnet: '10.0.0.0/24' }, /not an IPv6 block/],
      [{ family: 4, subnet: '10.0.0.0/24', ipRange: '10.0.0.0/23' }, /bigger than its parent subnet/],
      [{ family: 4, subnet: '10.0.0.0/24', ipRange: '10.0.1.0/25' }, /doesn't contain ip-range/],
      [{ family: 4, subnet: '10.0.0.0/24', ipRange: '10.0.0.1/25' }, /it should be 10\.0\.0\.0\/25/],
      [{ family: 4, subnet: '10.0.0.0/24', ipRange: 'fd00::/120' }, /parent subnet is an IPv4 block/],
      [{ family: 4, subnet: '10.0.0.0/24', gateway: '10.0.1.1' }, /invalid gateway .*doesn't contain this address/],
      [{ family: 4, subnet: '10.0.0.0/24', gateway: '10.0.0.0' }, /network address/],
      [{ family: 4, subnet: '10.0.0.0/24', gateway: '10.0.0.255' }, /broadcast address/],
      [{ family: 6, subnet: 'fd00::/64', gateway: 'fd00::' }, /subnet-router anycast/],
      [{ family: 4, subnet: '10.0.0.0/24', gateway: 'nope' }, /invalid gateway nope: invalid address/],
      [{ family: 4, subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.9.9' } }, /auxiliary address a/],
      [{ family: 4, subnet: '10.0.0.0/24', auxAddresses: { a: '10.0.0.9', b: '10.0.0.9' } }, /already reserved/],
      [{ family: 4, subnet: '10.0.0.0/24', gateway: '10.0.0.9', auxAddresses: { a: '10.0.0.9' } }, /auxiliary/],
      [{ family: 4, ipRange: '10.0.0.0/25' }, /needs an explicit subnet/],
      [{ family: 4, gateway: '10.0.0.1' }, /needs an explicit subnet/],
      [{ family: 6, subnet: 'fd00::1/128' }, /no address left for a gateway/],
      [{ family: 4, avoid: ['bad'] }, /invalid subnet to avoid bad/],
    ];
    for (const [req, message] of cases) {
      const ipam = newIpam();
      throwsWith(() => ipam.requestPool(req), InvalidParameterError, 400, message);
      assert.deepEqual(ipam.pools(), [], `a failed request reserves nothing: ${JSON.stringify(req)}`);
    }
  });

  it('takes the default gateway from the ip-range, skipping aux addresses (as Docker does)', () => {
    const ipam = newIpam();
    assert.equal(ipam.requestPool({ family: 4, subnet: '10.0.0.0/16', ipRange: '10.0.240.0/20' }).gateway, '10.0.240.0');
    assert.equal(ipam.requestPool({ family: 4, subnet: '10.1.0.0/24', ipRange: '10.1.0.128/25' }).gateway, '10.1.0.128');
    assert.equal(ipam.requestPool({ family: 4, subnet: '10.2.0.0/24', auxAddresses: { a: '10.2.0.1' } }).gateway, '10.2.0.2');
  });

  it('refuses overlap in both directions with 403 and Docker\'s message', () => {
    const ipam = newIpam();
    ipam.requestPool({ family: 4, subnet: '10.1.0.0/16' });
    const overlap = /^Pool overlaps with other one on this address space/;
    throwsWith(() => ipam.requestPool({ family: 4, subnet: '10.1.2.0/24' }), PoolOverlapError, 403, overlap);
    throwsWith(() => ipam.requestPool({ family: 4, subnet: '10.0.0.0/8' }), PoolOverlapError, 403, overlap);
    throwsWith(() => ipam.requestPool({ family: 4, subnet: '10.1.0.0/16' }), PoolOverlapError, 403, overlap);
    // Neighbours on either side are fine.
    ipam.requestPool({ family: 4, subnet: '10.0.255.0/24' });
    ipam.requestPool({ family: 4, subnet: '10.2.0.0/24' });
    ipam.requestPool({ family: 6, subnet: 'fd00::/48' });
    throwsWith(() => ipam.requestPool({ family: 6, subnet: 'fd00:0:0:7::/64' }), PoolOverlapError, 403, overlap);
    assert.equal(ipam.pools().length, 4);
  });

  it('releasePool is idempotent and frees the subnet', () => {
    const ipam = newIpam();
    const pool = ipam.requestPool({ family: 4, subnet: '10.1.0.0/16' });
    ipam.releasePool(pool.id);
    ipam.releasePool(pool.id);
    ipam.releasePool('never-existed');
    assert.deepEqual(ipam.pools(), []);
    ipam.requestPool({ family: 4, subnet: '10.1.128.0/17' });
  });

  it('hands out copies: mutating a returned pool changes nothing inside', () => {
    const ipam = newIpam();
    const pool = ipam.requestPool({ family: 4, subnet: '10.1.0.0/24', auxAddresses: { a: '10.1.0.5' } });
    pool.gateway = '10.1.0.9';
    pool.auxAddresses['b'] = '10.1.0.6';
    assert.deepEqual(ipam.pools()[0], { id: '10.1.0.0/24', family: 4, subnet: '10.1.0.0/24', gateway: '10.1.0.1', auxAddresses: { a: '10.1.0.5' } });
  });
});

describe('default pools', () => {
  it('carves /24s in order: 4,096 IPv4 networks, all distinct, then 403', () => {
    const ipam = newIpam();
    const subnets: string[] = [];
    for (let i = 0; i < 4096; i++) subnets.push(ipam.requestPool({ family: 4 }).subnet);
    assert.deepEqual(subnets.slice(0, 3), ['172.17.0.0/24', '172.17.1.0/24', '172.17.2.0/24']);
    assert.equal(subnets[255], '172.17.255.0/24');
    assert.equal(subnets[256], '172.18.0.0/24');
    assert.equal(subnets[768], '172.20.0.0/24');
    assert.equal(subnets[1792], '172.24.0.0/24');
    assert.equal(subnets[3840], '192.168.0.0/24');
    assert.equal(subnets[4095], '192.168.255.0/24');
    assert.equal(new Set(subnets).size, 4096);
    throwsWith(() => ipam.requestPool({ family: 4 }), IpamExhaustedError, 403, /non-overlapping IPv4 address pool/);
  });

  it('skips reserved pools and subnets to avoid (host routes), in either nesting', () => {
    const ipam = newIpam();
    ipam.requestPool({ family: 4, subnet: '172.17.0.0/24' });
    const avoid = ['172.17.1.128/25', '172.17.2.0/23', '10.0.0.0/8', 'fd00::/8'];
    assert.equal(ipam.requestPool({ family: 4, avoid }).subnet, '172.17.4.0/24');
    // A route wider than a whole base pool pushes the search to the next base pool.
    assert.equal(ipam.requestPool({ family: 4, avoid: ['172.16.0.0/12'] }).subnet, '192.168.0.0/24');
    assert.equal(ipam.requestPool({ family: 4 }).subnet, '172.17.1.0/24');
  });

  it('a released default subnet is the first candidate again', () => {
    const ipam = newIpam();
    const first = ipam.requestPool({ family: 4 });
    ipam.requestPool({ family: 4 });
    ipam.releasePool(first.id);
    assert.equal(ipam.requestPool({ family: 4 }).subnet, first.subnet);
  });

  it('exhausts a tiny base pool, and a freed gap in the middle is found', () => {
    const ipam = newIpam([{ base: '10.9.0.0/26', size: 28 }], []);
    const got = [0, 1, 2, 3].map(() => ipam.requestPool({ family: 4 }).subnet);
    assert.deepEqual(got, ['10.9.0.0/28', '10.9.0.16/28', '10.9.0.32/28', '10.9.0.48/28']);
    throwsWith(() => ipam.requestPool({ family: 4 }), IpamExhaustedError, 403);
    ipam.releasePool('10.9.0.16/28');
    assert.equal(ipam.requestPool({ family: 4 }).subnet, '10.9.0.16/28');
    throwsWith(() => ipam.requestPool({ family: 6 }), IpamExhaustedError, 403, /IPv6/);
  });

  it('never hands out a default subnet overlapping an explicit one', () => {
    const ipam = newIpam();
    ipam.requestPool({ family: 4, subnet: '172.17.0.128/25' });
    ipam.requestPool({ family: 4, subnet: '172.17.0.0/26' });
    ipam.requestPool({ family: 4, subnet: '172.17.2.0/23' });
    const picked = [0, 1, 2].map(() => ipam.requestPool({ family: 4 }).subnet);
    assert.deepEqual(picked, ['172.17.1.0/24', '172.17.4.0/24', '172.17.5.0/24']);
    const all = ipam.pools().map((p) => p.subnet);
    for (const a of all) for (const b of all) if (a !== b) assert.equal(subnetsOverlap(a, b), false, `${a} ${b}`);
  });

  it('carves IPv6 /64s from the host ULA /48', () => {
    const ipam = newIpam([], [{ base: 'fd12:3456:789a::/48', size: 64 }]);
    assert.deepEqual([0, 1].map(() => ipam.requestPool({ family: 6 })).map((p) => [p.subnet, p.gateway]), [
      ['fd12:3456:789a::/64', 'fd12:3456:789a::1'],
      ['fd12:3456:789a:1::/64', 'fd12:3456:789a:1::1'],
    ]);
    assert.equal(ipam.requestPool({ family: 6, avoid: ['fd12:3456:789a:2::/63'] }).subnet, 'fd12:3456:789a:4::/64');
  });

  it('rejects bad base pools at construction', () => {
    throwsWith(() => newIpam([{ base: '10.0.0.0/16', size: 8 }]), InvalidParameterError, 400, /size 8/);
    throwsWith(() => newIpam([{ base: '10.0.0.0/16', size: 33 }]), InvalidParameterError, 400);
    throwsWith(() => newIpam([{ base: 'fd00::/48', size: 64 }]), InvalidParameterError, 400, /IPv4/);
    throwsWith(() => newIpam([], [{ base: '10.0.0.0/8', size: 24 }]), InvalidParameterError, 400, /IPv6/);
    throwsWith(() => newIpam([{ base: '10.0.0.1/16', size: 24 }]), InvalidParameterError, 400, /should be 10\.0\.0\.0\/16/);
  });
});

describe('ulaPoolForHost', () => {
  it('derives fdXX:XXXX:XXXX::/48 from SHA-256 of the host ID like Docker, split into /64s', () => {
    // Expected values computed independently (Python hashlib) with Docker's algorithm.
    assert.deepEqual(ulaPoolForHost('my-host-id'), { base: 'fddf:240e:bbf1::/48', size: 64 });
    assert.deepEqual(ulaPoolForHost(''), { base: 'fd42:98fc:1c14::/48', size: 64 });
    assert.deepEqual(ulaPoolForHost('my-host-id'), ulaPoolForHost('my-host-id'));
    assert.notEqual(ulaPoolForHost('host-a').base, ulaPoolForHost('host-b').base);
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      const base = parseCidr(ulaPoolForHost(id).base)!;
      assert.equal(base.prefixLength, 48);
      assert.equal(base.address >> 120n, 0xfdn, 'inside fd00::/8');
      assert.equal(base.address & ((1n << 80n) - 1n), 0n, 'only the 40-bit global ID is set');
    }
  });
});

describe('parseAddressPoolFlag', () => {
  it('parses base and size in any order', () => {
    assert.deepEqual(parseAddressPoolFlag('base=10.10.0.0/16,size=24'), { base: '10.10.0.0/16', size: 24 });
    assert.deepEqual(parseAddressPoolFlag('size=64, base=fd00:1::/48'), { base: 'fd00:1::/48', size: 64 });
  });

  it('rejects bad flags with 400', () => {
    for (const bad of ['', 'base=10.0.0.0/16', 'size=24', 'base=10.0.0.0/16,size=x', 'base=10.0.0.0/16,size=12',
      'base=10.0.0.0/16,size=33', 'base=10.0.0.0,size=24', 'base=10.0.0.1/16,size=24', 'base=10.0.0.0/16,size=24,color=red',
      'base=10.0.0.0/16,size=24,size=25', 'base:10.0.0.0/16,size=24', 'base=10.0.0.0/16,size=-24']) {
      throwsWith(() => parseAddressPoolFlag(bad), InvalidParameterError, 400);
    }
  });
});
