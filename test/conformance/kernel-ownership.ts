/**
 * KernelOps conformance cases for the ownership mark (the interface group a link is created in) and the
 * tombstone group: a link's name never decides whether cnm owns it or may delete it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OWNER_GROUP, TOMBSTONE_GROUP } from '../../src/kernel/types.js';
import { type CaseRunner, mustGet, names } from './kernel-support.js';

const OTHER_GROUP = 0x20000001;

export function ownershipCases({ withFixture, withSandbox }: CaseRunner): void {
  describe('ownership mark', () => {
    it('a link is created in the group asked for (default 0), a veth peer in another namespace in its own', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnm-own0', group: DEFAULT_OWNER_GROUP });
        await k.linkAdd(null, { kind: 'bridge', name: 'cnm-plain0' });
        await k.linkAdd(null, {
          kind: 'veth', name: 'cnmvown0', master: 'cnm-own0', group: DEFAULT_OWNER_GROUP,
          peer: { name: 'eth0', netns: sb, group: OTHER_GROUP },
        });
        assert.equal((await mustGet(k, null, 'cnm-own0')).group, DEFAULT_OWNER_GROUP);
        assert.equal((await mustGet(k, null, 'cnm-plain0')).group, 0);
        assert.equal((await mustGet(k, null, 'cnmvown0')).group, DEFAULT_OWNER_GROUP);
        assert.equal((await mustGet(k, sb, 'eth0')).group, OTHER_GROUP);
        const listed = (await k.linkList(null)).find((l) => l.name === 'cnmvown0');
        assert.equal(listed?.group, DEFAULT_OWNER_GROUP, 'linkList reports the group too');
      }));

    it('linkSet changes the group; a link moved to another namespace keeps it', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmvmv0', peer: { name: 'cnmvmv1' } });
        await k.linkSet(null, 'cnmvmv0', { group: OTHER_GROUP });
        assert.equal((await mustGet(k, null, 'cnmvmv0')).group, OTHER_GROUP);
        await k.linkSet(null, 'cnmvmv0', { netns: sb });
        assert.equal((await mustGet(k, sb, 'cnmvmv0')).group, OTHER_GROUP);
        assert.equal((await mustGet(k, null, 'cnmvmv1')).group, 0);
      }));
  });

  describe('tombstones', () => {
    it('a cnmz-named link outside the tombstone group is an ordinary link: listed, and settle() leaves it', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmzfoo', peer: { name: 'cnmzbar' } });
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmzbr' });
        assert.ok(names(await k.linkList(null)).includes('cnmzfoo'));
        await k.settle();
        assert.deepEqual(
          names(await k.linkList(null)).filter((n) => n.startsWith('cnmz')).sort(),
          ['cnmzbar', 'cnmzbr', 'cnmzfoo'],
        );
        assert.ok(await k.linkGet(null, 'cnmzfoo'));
      }));

    it('a link in the tombstone group, whatever its name, is hidden and removed by settle()', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnm-dead0' });
        await k.linkAdd(null, { kind: 'bridge', name: 'cnm-live0' });
        await k.linkSet(null, 'cnm-dead0', { group: TOMBSTONE_GROUP });
        assert.equal(await k.linkGet(null, 'cnm-dead0'), undefined);
        assert.ok(!names(await k.linkList(null)).includes('cnm-dead0'));
        await k.settle();
        // Gone for good: the name can be created again without help, and the live one is still there.
        await k.linkAdd(null, { kind: 'bridge', name: 'cnm-dead0' });
        assert.equal((await mustGet(k, null, 'cnm-dead0')).group, 0);
        assert.ok(await k.linkGet(null, 'cnm-live0'));
      }));
  });
}
