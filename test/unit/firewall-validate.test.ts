import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseSubnet, validateIfname, validateIpv4Address } from '../../src/firewall/validate.js';
import { httpStatusOf } from '../../src/errors.js';

describe('firewall input validation', () => {
  it('canonicalises IPv6 subnets (RFC 5952)', () => {
    const cases: [string, string][] = [
      ['FD00:0000:0000:0000:0000:0000:0000:0000/64', 'fd00::/64'],
      ['2001:db8:0:0:1:0:0:0/112', '2001:db8:0:0:1::/112'],
      ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
      ['2001:0:0:1:0:0:0:0/64', '2001:0:0:1::/64'],
      ['fd00:1:2:3:4:5:6:0/120', 'fd00:1:2:3:4:5:6:0/120'],
      ['::ffff:10.0.0.0/120', '::ffff:10.0.0.0/120'],
      ['fe80::/10', 'fe80::/10'],
    ];
    for (const [input, expected] of cases) assert.equal(parseSubnet(input, 6).text, expected, input);
  });

  it('computes subnet ranges', () => {
    const s = parseSubnet('10.1.2.0/23', 4);
    assert.equal(s.text, '10.1.2.0/23');
    assert.equal(formatAddress(4, s.last), '10.1.3.255');
    const v6 = parseSubnet('fd00::/127', 6);
    assert.equal(v6.last - v6.first, 1n);
  });

  it('rejects zone indexes, junk and wrong families', () => {
    for (const bad of ['fe80::%eth0/64', 'fd00::/64 ', ' fd00::/64', 'fd00::/064x', 'fd00::/129']) {
      assert.throws(() => parseSubnet(bad, 6), (e: unknown) => httpStatusOf(e) === 400, bad);
    }
    assert.throws(() => parseSubnet('10.0.0.0/8', 6), (e: unknown) => httpStatusOf(e) === 400);
    assert.throws(() => parseSubnet('010.0.0.0/8', 4), (e: unknown) => httpStatusOf(e) === 400);
  });

  it('accepts the interface names the bridge driver accepts', () => {
    for (const ok of ['cnmbr-a', 'br@x+y', 'a', 'abcdefghijklmno', 'br_0.1']) assert.equal(validateIfname(ok), ok);
    assert.throws(() => validateIfname('abcdefghijklmnop'), (e: unknown) => httpStatusOf(e) === 400);
  });

  it('normalises IPv4 addresses', () => {
    assert.equal(validateIpv4Address('192.0.2.1'), '192.0.2.1');
    assert.throws(() => validateIpv4Address('192.0.2'), (e: unknown) => httpStatusOf(e) === 400);
  });
});
