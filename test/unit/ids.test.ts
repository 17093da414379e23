/** IDs and MACs drawn from the pooled CSPRNG: right shape, never the same bytes twice (across refills too). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFullId, newId, randomHex, randomMac } from '../../src/util/ids.js';

test('newId is 64 lowercase hex and unique across many pool refills', () => {
  const seen = new Set<string>();
  // 4,096-byte blocks: 2,000 IDs of 32 bytes use about 16 of them.
  for (let i = 0; i < 2000; i++) {
    const id = newId();
    assert.ok(isFullId(id), id);
    assert.ok(!seen.has(id), `duplicate ID ${id}`);
    seen.add(id);
  }
});

test('randomMac is a locally administered unicast address, and random', () => {
  const macs = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const mac = randomMac();
    assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x01, 0, `${mac} is multicast`);
    assert.equal(first & 0x02, 0x02, `${mac} is not locally administered`);
    macs.add(mac);
  }
  assert.ok(macs.size > 990, `only ${macs.size} distinct MACs in 1,000`);
});

test('randomHex: any length, including one larger than the pool block; consecutive draws differ', () => {
  for (const n of [1, 4, 6, 16, 4095, 4096, 5000]) assert.match(randomHex(n), new RegExp(`^[0-9a-f]{${2 * n}}$`));
  const a = randomHex(16);
  const b = randomHex(16);
  assert.notEqual(a, b);
  // Not all zero: the bytes handed out are wiped in the pool afterwards, never before use.
  assert.notEqual(randomHex(16), '0'.repeat(32));
});
