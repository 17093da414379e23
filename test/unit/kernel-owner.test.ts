import { it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OWNER_GROUP, ownerGroupFor, TOMBSTONE_GROUP } from '../../src/kernel/types.js';

it('ownerGroupFor: stable per identity, different between daemons, in [2^28, 2^31), never the tombstone group', () => {
  assert.equal(ownerGroupFor('/var/lib/cnm\x004026531840'), ownerGroupFor('/var/lib/cnm\x004026531840'));
  const groups = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const g = ownerGroupFor(`/tmp/root${i}\x00${4026532000 + i}`);
    assert.ok(g >= 0x10000000 && g < 0x80000000, `group ${g} in range`);
    assert.notEqual(g, TOMBSTONE_GROUP);
    groups.add(g);
  }
  assert.ok(groups.size > 1990, 'identities map to distinct groups');
  assert.notEqual(ownerGroupFor('/a\x001'), ownerGroupFor('/a\x002'), 'same root, another namespace: another group');
  assert.ok(DEFAULT_OWNER_GROUP < 0x80000000);
});
