import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidParameterError } from '../../src/errors.js';
import {
  canonicalCidr,
  canonicalIp,
  cidrContains,
  cidrContainsCidr,
  cidrFirst,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  formatCidr,
  formatIp,
  hasHostBits,
  ipFamilyOf,
  maskCidr,
  parseCidr,
  parseIp,
  requireCidr,
  requireIp,
  splitAddressWithPrefix,
  subnetContainsIp,
  subnetsOverlap,
  type IpCidr,
} from '../../src/util/ip.js';

function cidr(text: string): IpCidr {
  const parsed = parseCidr(text);
  assert.ok(parsed, `test CIDR ${text} must parse`);
  return parsed;
}

describe('IPv4 addresses', () => {
  it('parses dotted quads to numbers and formats them back', () => {
    assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203n });
    assert.deepEqual(parseIp('0.0.0.0'), { family: 4, value: 0n });
    assert.deepEqual(parseIp('255.255.255.255'), { family: 4, value: 0xffffffffn });
    assert.equal(formatIp({ family: 4, value: 0xc0a80001n }), '192.168.0.1');
    assert.equal(formatIp({ family: 4, value: 0xffffffffn }), '255.255.255.255');
  });

  it('rejects malformed and ambiguous forms like netip does', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1..2.3', ' 1.2.3.4',
      '1.2.3.4 ', 'a.b.c.d', '1.2.3.-4', '1.2.3.4/24', '+1.2.3.4', '1.2.3.1e1']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
});

describe('IPv6 addresses', () => {
  it('parses full, compressed and IPv4-embedded forms', () => {
    assert.equal(parseIp('::')?.value, 0n);
    assert.equal(parseIp('::1')?.value, 1n);
    assert.equal(parseIp('1::')?.value, 1n << 112n);
    assert.equal(parseIp('2001:db8:0:0:0:0:0:1')?.value, parseIp('2001:db8::1')?.value);
    assert.equal(parseIp('FD00::ABCD')?.value, (0xfd00n << 112n) | 0xabcdn);
    assert.equal(parseIp('::ffff:10.0.0.1')?.value, (0xffffn << 32n) | 0x0a000001n);
    assert.equal(parseIp('64:ff9b::192.0.2.33')?.value, (0x64n << 112n) | (0xff9bn << 96n) | 0xc0000221n);
    assert.equal(parseIp('1:2:3:4:5:6:7:8')?.family, 6);
    assert.equal(parseIp('1:2:3:4:5:6:7::')?.value, parseIp('1:2:3:4:5:6:7:0')?.value);
    assert.equal(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')?.value, (1n << 128n) - 1n);
  });

  it('rejects malformed forms', () => {
    for (const bad of [':', ':::', '1:::2', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::',
      'g::1', ':1::', '1::2:', 'fe80::1%eth0', '::1.2.3', '1.2.3.4::', '::ffff:1.2.3.4:5', '1:2:3:4:5:6:7:8::']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });

  it('formats per RFC 5952: lowercase, longest zero run compressed, first on a tie, no single-group ::', () => {
    const cases: Array<[string, string]> = [
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['fd00:1:2:3::', 'fd00:1:2:3::'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['0:0:0:0:0:ffff:a00:1', '::ffff:10.0.0.1'],
    ];
    for (const [input, expected] of cases) assert.equal(canonicalIp(input), expected, input);
  });

  it('round-trips random values through format and parse', () => {
    let seed = 12345n;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) & ((1n << 128n) - 1n);
      // Zero two groups in a third of the cases so the compression paths are exercised.
      const value = i % 3 === 0 ? seed & ~(0xffffffffn << 32n) : seed;
      const text = formatIp({ family: 6, value });
      assert.equal(parseIp(text)?.value, value, text);
    }
  });
});

describe('family detection', () => {
  it('tells the family or undefined', () => {
    assert.equal(ipFamilyOf('10.0.0.1'), 4);
    assert.equal(ipFamilyOf('fd00::1'), 6);
    assert.equal(ipFamilyOf('::ffff:1.2.3.4'), 6);
    assert.equal(ipFamilyOf('nope'), undefined);
  });
});

describe('CIDR blocks', () => {
  it('parses, keeps host bits as written and masks them on request', () => {
    const c = cidr('10.0.0.7/24');
    assert.equal(c.prefixLength, 24);
    assert.equal(hasHostBits(c), true);
    assert.equal(formatCidr(c), '10.0.0.7/24');
    assert.equal(formatCidr(maskCidr(c)), '10.0.0.0/24');
    assert.equal(hasHostBits(cidr('10.0.0.0/24')), false);
    assert.equal(canonicalCidr('FD00:0:0:0::5/64'), 'fd00::/64');
    assert.equal(canonicalCidr('0.0.0.0/0'), '0.0.0.0/0');
    assert.equal(canonicalCidr('1.2.3.4/32'), '1.2.3.4/32');
    assert.equal(canonicalCidr('::1/128'), '::1/128');
  });

  it('rejects bad prefix lengths and missing parts', () => {
    for (const bad of ['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '10.0.0.0/-1', '/24',
      'fd00::/129', '10.0.0.0/24/1', '10.0.0.0/ 24', '10.0.0.256/24']) {
      assert.equal(parseCidr(bad), undefined, bad);
    }
  });

  it('computes first, last and size for both families', () => {
    const v4 = cidr('192.168.1.77/26');
    assert.equal(formatIp({ family: 4, value: cidrFirst(v4) }), '192.168.1.64');
    assert.equal(formatIp({ family: 4, value: cidrLast(v4) }), '192.168.1.127');
    assert.equal(cidrSize(v4), 64n);
    assert.equal(cidrSize(cidr('0.0.0.0/0')), 1n << 32n);
    const v6 = cidr('fd00:1::/64');
    assert.equal(cidrSize(v6), 1n << 64n);
    assert.equal(formatIp({ family: 6, value: cidrLast(v6) }), 'fd00:1::ffff:ffff:ffff:ffff');
  });

  it('contains addresses of its own family only, including both ends', () => {
    const c = cidr('10.1.0.0/16');
    assert.equal(cidrContains(c, parseIp('10.1.0.0')!), true);
    assert.equal(cidrContains(c, parseIp('10.1.255.255')!), true);
    assert.equal(cidrContains(c, parseIp('10.2.0.0')!), false);
    assert.equal(cidrContains(c, parseIp('10.0.255.255')!), false);
    // ::a01:0 has the same low 32 bits as 10.1.0.0 but is IPv6.
    assert.equal(cidrContains(c, parseIp('::a01:0')!), false);
    assert.equal(subnetContainsIp('fd00::/64', 'fd00::ffff'), true);
    assert.equal(subnetContainsIp('fd00::/64', 'fd00:0:0:1::'), false);
    assert.equal(subnetContainsIp('bad', '10.0.0.1'), false);
    assert.equal(subnetContainsIp('10.0.0.0/8', 'bad'), false);
  });

  it('detects overlap and nesting in both directions', () => {
    assert.equal(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.20.0.0/16')), true);
    assert.equal(cidrsOverlap(cidr('10.20.0.0/16'), cidr('10.0.0.0/8')), true);
    assert.equal(cidrsOverlap(cidr('10.0.0.0/24'), cidr('10.0.1.0/24')), false);
    assert.equal(cidrsOverlap(cidr('10.0.0.0/24'), cidr('10.0.0.255/32')), true);
    assert.equal(cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0')), false);
    assert.equal(subnetsOverlap('fd00::/48', 'fd00:0:0:5::/64'), true);
    assert.equal(subnetsOverlap('fd00::/48', 'fd00:1::/48'), false);
    assert.equal(subnetsOverlap('x', '10.0.0.0/8'), false);
    assert.equal(cidrContainsCidr(cidr('10.0.0.0/8'), cidr('10.1.0.0/16')), true);
    assert.equal(cidrContainsCidr(cidr('10.1.0.0/16'), cidr('10.0.0.0/8')), false);
    assert.equal(cidrContainsCidr(cidr('10.0.0.0/24'), cidr('10.0.0.0/24')), true);
  });

  it('splits address/prefix strings', () => {
    assert.deepEqual(splitAddressWithPrefix('10.0.0.2/24'), { address: '10.0.0.2', prefixLength: 24 });
    assert.deepEqual(splitAddressWithPrefix('FD00::2/64'), { address: 'fd00::2', prefixLength: 64 });
    assert.equal(splitAddressWithPrefix('10.0.0.2'), undefined);
  });
});

describe('require helpers', () => {
  it('throw InvalidParameterError (400) naming the bad value', () => {
    assert.throws(() => requireIp('10.0.0.300', 'gateway'), (err: unknown) => {
      assert.ok(err instanceof InvalidParameterError);
      assert.equal(err.status, 400);
      assert.match(err.message, /gateway 10\.0\.0\.300/);
      return true;
    });
    assert.throws(() => requireCidr('10.0.0.0/40', 'subnet'), InvalidParameterError);
    assert.equal(requireIp('::1', 'x').family, 6);
    assert.equal(requireCidr('10.0.0.0/8', 'x').prefixLength, 8);
  });
});
