import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AddressInUseError,
  CnmError,
  InvalidParameterError,
  IpamExhaustedError,
  NotFoundError,
  PoolOverlapError,
} from '../../src/errors.js';
import { DefaultIpam } from '../../src/ipam/default.js';
import type { PoolRequest } from '../../src/ipam/types.js';

const newIpam = () => new DefaultIpam({ v4Pools: [{ base: '172.30.0.0/16', size: 24 }], v6Pools: [] });

function poolOf(req: PoolRequest): { ipam: DefaultIpam; id: string } {
  const ipam = newIpam();
  return { ipam, id: ipam.requestPool(req).id };
}

function throwsWith(fn: () => unknown, type: new (...args: never[]) => CnmError, status: number, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal(err.status, status);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const take = (ipam: DefaultIpam, id: string, n: number) => Array.from({ length: n }, () => ipam.requestAddress(id));

describe('dynamic addresses', () => {
  it('start after the gateway and go up in order', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    assert.deepEqual(take(ipam, id, 3), ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    assert.deepEqual(ipam.addresses(id), ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('exhaust a /29 after its five host addresses besides the gateway, with Docker\'s message', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.8/29' });
    assert.deepEqual(take(ipam, id, 5), ['10.0.0.10', '10.0.0.11', '10.0.0.12', '10.0.0.13', '10.0.0.14']);
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403,
      /^no available IPv4 addresses on this network's address pools$/);
    ipam.releaseAddress(id, '10.0.0.12');
    assert.equal(ipam.requestAddress(id), '10.0.0.12');
  });

  it('next-fit: a released address is not reused until the others have been handed out', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/29' }); // hosts .1-.6, gateway .1
    assert.deepEqual(take(ipam, id, 3), ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    ipam.releaseAddress(id, '10.0.0.3');
    assert.deepEqual(take(ipam, id, 2), ['10.0.0.5', '10.0.0.6']);
    // Wraps to the start, skipping the gateway and taken ones.
    assert.equal(ipam.requestAddress(id), '10.0.0.3');
  });

  it('stay inside the ip-range, which may exclude the gateway; static ones may be anywhere in the subnet', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24', ipRange: '10.0.0.128/30', gateway: '10.0.0.1' });
    assert.deepEqual(take(ipam, id, 4), ['10.0.0.128', '10.0.0.129', '10.0.0.130', '10.0.0.131']);
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
    assert.equal(ipam.requestAddress(id, '10.0.0.200'), '10.0.0.200');
    ipam.releaseAddress(id, '10.0.0.200');
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403, /no available IPv4/);
  });

  it('count a gateway inside the ip-range as taken', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24', ipRange: '10.0.0.0/30' });
    // .0 is the network address, .1 the gateway: only .2 and .3 remain.
    assert.deepEqual(take(ipam, id, 2), ['10.0.0.2', '10.0.0.3']);
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
  });

  it('never hand out aux addresses', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/29', auxAddresses: { a: '10.0.0.3', b: '10.0.0.5' } });
    assert.deepEqual(take(ipam, id, 3), ['10.0.0.2', '10.0.0.4', '10.0.0.6']);
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
  });
});

describe('/31 and /32 (RFC 3021: no network or broadcast address)', () => {
  it('/31: the gateway takes the first address, one address is left', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/31' });
    assert.equal(ipam.pools()[0]!.gateway, '10.0.0.0');
    assert.equal(ipam.requestAddress(id), '10.0.0.1');
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
  });

  it('/31 with an explicit gateway on the second address hands out the first', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/31', gateway: '10.0.0.1' });
    assert.equal(ipam.requestAddress(id), '10.0.0.0');
  });

  it('/32: the only address is the gateway, nothing left to hand out', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.7/32' });
    assert.equal(ipam.pools()[0]!.gateway, '10.0.0.7');
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
  });
});

describe('IPv6 addresses', () => {
  it('reserve the subnet-router anycast address, start after the gateway, format canonically', () => {
    const { ipam, id } = poolOf({ family: 6, subnet: 'fd00:1::/64' });
    assert.equal(ipam.pools()[0]!.gateway, 'fd00:1::1');
    assert.deepEqual(take(ipam, id, 2), ['fd00:1::2', 'fd00:1::3']);
    assert.equal(ipam.requestAddress(id, 'FD00:1:0:0:FFFF:FFFF:FFFF:FFFF'), 'fd00:1::ffff:ffff:ffff:ffff');
    throwsWith(() => ipam.requestAddress(id, 'fd00:1::'), InvalidParameterError, 400, /subnet-router anycast/);
    throwsWith(() => ipam.requestAddress(id, 'fd00:1::2'), AddressInUseError, 403);
  });

  it('exhaust a small IPv6 range and wrap around after a release', () => {
    const { ipam, id } = poolOf({ family: 6, subnet: 'fd00::/64', ipRange: 'fd00::100/126', gateway: 'fd00::1' });
    assert.deepEqual(take(ipam, id, 4), ['fd00::100', 'fd00::101', 'fd00::102', 'fd00::103']);
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403, /no available IPv6 addresses/);
    ipam.releaseAddress(id, 'fd00::101');
    assert.equal(ipam.requestAddress(id), 'fd00::101');
  });

  it('handle a pool wider than /64 (hash set rather than bitmap)', () => {
    const { ipam, id } = poolOf({ family: 6, subnet: 'fd00:9::/48' });
    assert.deepEqual(take(ipam, id, 2), ['fd00:9::2', 'fd00:9::3']);
    assert.equal(ipam.requestAddress(id, 'fd00:9:0:ffff:ffff:ffff:ffff:ffff'), 'fd00:9:0:ffff:ffff:ffff:ffff:ffff');
  });
});

describe('static (preferred) addresses', () => {
  it('are granted exactly once: 403 "Address already in use" afterwards', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    assert.equal(ipam.requestAddress(id, '10.0.0.50'), '10.0.0.50');
    throwsWith(() => ipam.requestAddress(id, '10.0.0.50'), AddressInUseError, 403, /^Address already in use$/);
    throwsWith(() => ipam.requestAddress(id, '10.0.0.1'), AddressInUseError, 403, /^Address already in use$/);
  });

  it('do not move the dynamic cursor, and dynamic allocation skips them', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    ipam.requestAddress(id, '10.0.0.3');
    ipam.requestAddress(id, '10.0.0.100');
    assert.deepEqual(take(ipam, id, 2), ['10.0.0.2', '10.0.0.4']);
  });

  it('are rejected with 400 outside the subnet, on network/broadcast, when malformed or of the other family', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    throwsWith(() => ipam.requestAddress(id, '10.0.1.5'), InvalidParameterError, 400, /doesn't contain this address/);
    throwsWith(() => ipam.requestAddress(id, '10.0.0.0'), InvalidParameterError, 400, /network address/);
    throwsWith(() => ipam.requestAddress(id, '10.0.0.255'), InvalidParameterError, 400, /broadcast address/);
    throwsWith(() => ipam.requestAddress(id, '10.0.0.x'), InvalidParameterError, 400, /invalid address/);
    throwsWith(() => ipam.requestAddress(id, 'fd00::5'), InvalidParameterError, 400, /IPv4 block/);
    assert.deepEqual(ipam.addresses(id), []);
  });

  it('need an existing pool: 404 otherwise', () => {
    throwsWith(() => newIpam().requestAddress('10.9.9.0/24'), NotFoundError, 404);
  });
});

describe('releaseAddress', () => {
  it('is idempotent, ignores unknown pools, keeps the gateway and aux addresses reserved', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/30', auxAddresses: { a: '10.0.0.2' } });
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
    ipam.releaseAddress(id, '10.0.0.1');
    ipam.releaseAddress(id, '10.0.0.2');
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
    ipam.releaseAddress('10.200.0.0/24', '10.200.0.5');

    const second = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    const address = second.ipam.requestAddress(second.id);
    second.ipam.releaseAddress(second.id, address);
    second.ipam.releaseAddress(second.id, address);
    assert.deepEqual(second.ipam.addresses(second.id), []);
  });

  it('rejects an address outside the pool with 400 (a caller bug, not a no-op)', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    throwsWith(() => ipam.releaseAddress(id, '10.0.1.1'), InvalidParameterError, 400);
  });

  it('is undone by releasePool: every address goes with the pool', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.0.0.0/24' });
    take(ipam, id, 5);
    ipam.releasePool(id);
    ipam.requestPool({ family: 4, subnet: '10.0.0.0/24' });
    assert.deepEqual(ipam.addresses(id), []);
    assert.equal(ipam.requestAddress(id), '10.0.0.2');
  });
});

describe('restorePool', () => {
  it('round-trips pools and addresses into a fresh driver; allocation resumes after the highest', () => {
    const before = newIpam();
    const v4 = before.requestPool({ family: 4, subnet: '10.1.0.0/24', ipRange: '10.1.0.0/25', auxAddresses: { x: '10.1.0.9' } });
    const v6 = before.requestPool({ family: 6, subnet: 'fd00:5::/64' });
    const picked = before.requestPool({ family: 4 });
    take(before, v4.id, 4);
    before.requestAddress(v4.id, '10.1.0.200');
    take(before, v6.id, 3);
    before.releaseAddress(v4.id, '10.1.0.3');

    const after = newIpam();
    for (const pool of before.pools()) after.restorePool(pool, before.addresses(pool.id));
    assert.deepEqual(after.pools(), before.pools());
    for (const pool of before.pools()) assert.deepEqual(after.addresses(pool.id), before.addresses(pool.id));
    assert.equal(picked.subnet, '172.30.0.0/24');
    assert.equal(after.requestPool({ family: 4 }).subnet, '172.30.1.0/24', 'restored default subnets stay taken');

    assert.equal(after.requestAddress(v4.id), '10.1.0.6', 'after .5, the highest restored address in range');
    assert.equal(after.requestAddress(v6.id), 'fd00:5::5');
    throwsWith(() => after.requestAddress(v4.id, '10.1.0.9'), AddressInUseError, 403);
    throwsWith(() => after.requestAddress(v4.id, '10.1.0.1'), AddressInUseError, 403);
  });

  it('throws on conflicts and leaves nothing behind', () => {
    const ipam = newIpam();
    const pool = ipam.requestPool({ family: 4, subnet: '10.1.0.0/24' });
    throwsWith(() => ipam.restorePool(pool, []), PoolOverlapError, 403);
    throwsWith(() => ipam.restorePool({ ...pool, id: 'other', subnet: '10.1.0.0/25' }, []), PoolOverlapError, 403);

    const fresh = newIpam();
    throwsWith(() => fresh.restorePool(pool, ['10.1.0.5', '10.1.0.5']), AddressInUseError, 403);
    throwsWith(() => fresh.restorePool(pool, ['10.1.0.1']), AddressInUseError, 403);
    throwsWith(() => fresh.restorePool(pool, ['10.2.0.5']), InvalidParameterError, 400);
    throwsWith(() => fresh.restorePool(pool, ['10.1.0.255']), InvalidParameterError, 400);
    assert.deepEqual(fresh.pools(), []);
    fresh.restorePool(pool, ['10.1.0.5']);
    assert.deepEqual(fresh.addresses(pool.id), ['10.1.0.5']);
  });

  it('accepts a legacy subnet with host bits, keeping the persisted id', () => {
    const ipam = newIpam();
    ipam.restorePool({ id: '10.3.0.1/24', family: 4, subnet: '10.3.0.1/24', gateway: '10.3.0.1', auxAddresses: {} }, ['10.3.0.2']);
    assert.deepEqual(ipam.pools(), [{ id: '10.3.0.1/24', family: 4, subnet: '10.3.0.0/24', gateway: '10.3.0.1', auxAddresses: {} }]);
    assert.equal(ipam.requestAddress('10.3.0.1/24'), '10.3.0.3');
  });
});

describe('scale', () => {
  it('fills a /16 with 65,533 addresses, all distinct, then reports exhaustion', () => {
    const { ipam, id } = poolOf({ family: 4, subnet: '10.50.0.0/16' });
    const seen = new Set<string>();
    for (let i = 0; i < 65533; i++) seen.add(ipam.requestAddress(id));
    assert.equal(seen.size, 65533);
    assert.ok(!seen.has('10.50.0.0') && !seen.has('10.50.0.1') && !seen.has('10.50.255.255'));
    throwsWith(() => ipam.requestAddress(id), IpamExhaustedError, 403);
  });

  it('hands out 60,000 IPv6 addresses from a /64, all distinct', () => {
    const { ipam, id } = poolOf({ family: 6, subnet: 'fd00:77::/64' });
    const seen = new Set<string>();
    for (let i = 0; i < 60000; i++) seen.add(ipam.requestAddress(id));
    assert.equal(seen.size, 60000);
  });
});
