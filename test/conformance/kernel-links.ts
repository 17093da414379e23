/** KernelOps conformance cases: namespaces, links and their errors. */
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelError } from '../../src/errors.js';
import { type CaseRunner, eventually, expectKernelError, mustGet, names } from './kernel-support.js';
import { blocked, inNetnsPath, ping as probePing, reached } from '../helpers/probe.js';

export function namespaceAndLinkCases({ withFixture, withSandbox }: CaseRunner): void {
  describe('namespaces', () => {
    it('createNetns pins a live namespace with only loopback, up', () =>
      withFixture(async (fx, k) => {
        const sb = fx.newNetnsPath();
        assert.equal(await k.netnsExists(sb), false);
        await k.createNetns(sb);
        assert.equal(await k.netnsExists(sb), true);
        const links = await k.linkList(sb);
        assert.deepEqual(links.map((l) => l.name), ['lo']);
        assert.equal(links[0]!.up, true);
        assert.equal(links[0]!.kind, '');
        assert.equal(links[0]!.index, 1);
        assert.equal(links[0]!.mtu, 65536);
        assert.ok(names(await k.linkList(null)).includes('lo'));
      }));

    it('deleteNetns unpins the namespace and is idempotent', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.deleteNetns(sb);
        assert.equal(await k.netnsExists(sb), false);
        await k.deleteNetns(sb);
        assert.equal(await k.netnsExists(sb), false);
      }));

    it('createNetns on a path that already holds a namespace fails with EEXIST', () =>
      withSandbox(async (_fx, k, sb) => {
        await expectKernelError(k.createNetns(sb), ['EEXIST']);
        assert.equal(await k.netnsExists(sb), true);
      }));

    it('namespaces are isolated: a link made in one is absent from the others', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(sb, { kind: 'bridge', name: 'cnmbr0' });
        assert.ok(await k.linkGet(sb, 'cnmbr0'));
        assert.equal(await k.linkGet(null, 'cnmbr0'), undefined);
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        assert.ok(await k.linkGet(null, 'cnmbr0'));
      }));

    it('deleting a namespace destroys its veth ends and so their peers elsewhere', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb } });
        await k.deleteNetns(sb);
        // Namespace teardown runs asynchronously in the kernel, so wait for the outcome, not a duration.
        await eventually(async () => (await k.linkGet(null, 'cnmv0')) === undefined, 'host end of the veth gone');
      }));

    it('nothing the kernel keeps open holds a deleted namespace alive (40 namespaces, each worked in)', () =>
      withFixture(async (fx, k) => {
        const paths = Array.from({ length: 40 }, () => fx.newNetnsPath());
        for (const [i, sb] of paths.entries()) {
          await k.createNetns(sb);
          await k.linkAdd(null, { kind: 'veth', name: `cnmhv${i}`, peer: { name: 'eth0', netns: sb } });
          await k.addrAdd(sb, 'eth0', `10.99.${i}.2/24`);
          await k.linkSet(sb, 'eth0', { up: true });
        }
        // Used again after forty others: whatever is kept for a namespace is found, or opened anew.
        await k.addrAdd(paths[0]!, 'eth0', '10.98.0.2/24');
        for (const sb of paths) await k.deleteNetns(sb);
        await eventually(
          async () => !(await k.linkList(null)).some((l) => /^cnmhv\d+$/.test(l.name)),
          'every host end gone with its namespace',
          fx.slowSteps ? 20_000 : 10_000,
        );
      }));
  });

  describe('links', () => {
    it('bridge: created with mtu, mac, up; listed and fetched', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 1400, mac: '02:42:ac:11:00:01', up: true });
        const br = await mustGet(k, null, 'cnmbr0');
        assert.equal(br.kind, 'bridge');
        assert.equal(br.mtu, 1400);
        assert.equal(br.mac, '02:42:ac:11:00:01');
        assert.equal(br.up, true);
        assert.equal(br.master, undefined);
        assert.equal(br.multicastSnooping, true, 'the kernel snoops IGMP/MLD unless told otherwise');
        assert.ok(br.index > 1);
        const listed = (await k.linkList(null)).find((l) => l.name === 'cnmbr0');
        assert.deepEqual(listed, br);
      }));

    it('bridge: created without multicast snooping', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', multicastSnooping: false });
        assert.equal((await mustGet(k, null, 'cnmbr0')).multicastSnooping, false);
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        assert.equal((await mustGet(k, null, 'cnmv0')).multicastSnooping, undefined, 'only bridges report it');
      }));

    // A veth, not a dummy: kernels without the dummy module (this project's test machine) would skip it.
    it('a link created with a master and no up flag: down, enslaved at creation (its peer is not)', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmd0', master: 'cnmbr0', peer: { name: 'cnmd1' } });
        const d = await mustGet(k, null, 'cnmd0');
        assert.deepEqual([d.kind, d.up, d.master], ['veth', false, 'cnmbr0']);
        const peer = await mustGet(k, null, 'cnmd1');
        assert.deepEqual([peer.up, peer.master], [false, undefined]);
      }));

    it('veth: peer is created directly in another namespace under its final name with its attributes', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        // The peer's final name is taken in the host namespace, so it can only succeed if created in place.
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmeth0' });
        await k.linkAdd(null, {
          kind: 'veth', name: 'cnmv0', mtu: 1400, mac: '02:42:ac:11:00:10', up: true, master: 'cnmbr0',
          peer: { name: 'cnmeth0', netns: sb, mtu: 1400, mac: '02:42:ac:11:00:11', up: true },
        });
        const host = await mustGet(k, null, 'cnmv0');
        assert.deepEqual([host.kind, host.mtu, host.mac, host.up, host.master], ['veth', 1400, '02:42:ac:11:00:10', true, 'cnmbr0']);
        const peer = await mustGet(k, sb, 'cnmeth0');
        assert.deepEqual([peer.kind, peer.mtu, peer.mac, peer.up, peer.master], ['veth', 1400, '02:42:ac:11:00:11', true, undefined]);
        assert.equal((await mustGet(k, null, 'cnmeth0')).kind, 'bridge');
      }));

    it('veth: peer defaults to the same namespace; both ends down unless asked', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        const [a, b] = [await mustGet(k, null, 'cnmv0'), await mustGet(k, null, 'cnmv1')];
        assert.deepEqual([a.kind, a.up, b.kind, b.up], ['veth', false, 'veth', false]);
        assert.notEqual(a.index, b.index);
      }));

    it('veth: peer into the host namespace (null) from a sandbox', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(sb, { kind: 'veth', name: 'cnmeth0', peer: { name: 'cnmv0', netns: null } });
        assert.ok(await k.linkGet(sb, 'cnmeth0'));
        assert.ok(await k.linkGet(null, 'cnmv0'));
        assert.equal(await k.linkGet(sb, 'cnmv0'), undefined);
      }));

    it('vxlan: created with vni, port, underlay, no learning', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.98.0.1/24');
        await k.linkAdd(null, {
          kind: 'vxlan', name: 'cnmvx0', vni: 4242, dstPort: 4790, local: '10.98.0.1', dev: 'cnmbr0',
          learning: false, mtu: 1400, up: true,
        });
        const vx = await mustGet(k, null, 'cnmvx0');
        assert.deepEqual([vx.kind, vx.mtu, vx.up], ['vxlan', 1400, true]);
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx1', vni: 4243 });
        assert.equal((await mustGet(k, null, 'cnmvx1')).kind, 'vxlan');
      }));

    it('macvlan: on a parent, in place or directly in another namespace', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(null, { kind: 'macvlan', name: 'cnmmv0', parent: 'cnmbr0', mode: 'bridge', up: true });
        const here = await mustGet(k, null, 'cnmmv0');
        assert.deepEqual([here.kind, here.up], ['macvlan', true]);
        await k.linkAdd(null, {
          kind: 'macvlan', name: 'cnmmv1', parent: 'cnmbr0', mode: 'private', netns: sb, mac: '02:42:ac:11:00:20',
        });
        assert.equal(await k.linkGet(null, 'cnmmv1'), undefined);
        const there = await mustGet(k, sb, 'cnmmv1');
        assert.deepEqual([there.kind, there.mac], ['macvlan', '02:42:ac:11:00:20']);
      }));

    it('linkSet: up/down, mtu, mac, master and nomaster, rename', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await k.linkSet(null, 'cnmv0', { up: true, mtu: 1300, mac: '02:42:ac:11:00:30', master: 'cnmbr0' });
        let v = await mustGet(k, null, 'cnmv0');
        assert.deepEqual([v.up, v.mtu, v.mac, v.master], [true, 1300, '02:42:ac:11:00:30', 'cnmbr0']);
        await k.linkSet(null, 'cnmv0', { master: null, up: false });
        v = await mustGet(k, null, 'cnmv0');
        assert.deepEqual([v.up, v.master], [false, undefined]);
        await k.linkSet(null, 'cnmv0', { name: 'cnmv9' });
        assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
        const renamed = await mustGet(k, null, 'cnmv9');
        assert.equal(renamed.index, v.index);
      }));

    it('linkSet netns: moves a link (optionally renamed) and back to null', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await k.linkSet(null, 'cnmv1', { netns: sb, name: 'cnmeth0', up: true });
        assert.equal(await k.linkGet(null, 'cnmv1'), undefined);
        assert.equal((await mustGet(k, sb, 'cnmeth0')).up, true);
        await k.linkSet(sb, 'cnmeth0', { netns: null });
        assert.ok(await k.linkGet(null, 'cnmeth0'));
        assert.equal(await k.linkGet(sb, 'cnmeth0'), undefined);
      }));

    it('linkGet of a missing link is undefined; linkDel is idempotent', () =>
      withFixture(async (_fx, k) => {
        assert.equal(await k.linkGet(null, 'cnmnothere'), undefined);
        await k.linkDel(null, 'cnmnothere');
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await k.linkDel(null, 'cnmbr0');
        assert.equal(await k.linkGet(null, 'cnmbr0'), undefined);
        await k.linkDel(null, 'cnmbr0');
      }));

    it('linkDel of one veth end removes the peer, also across namespaces', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb } });
        await k.linkDel(null, 'cnmv0');
        assert.equal(await k.linkGet(sb, 'cnmeth0'), undefined);
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv2', peer: { name: 'cnmv3' } });
        await k.linkDel(null, 'cnmv3');
        assert.equal(await k.linkGet(null, 'cnmv2'), undefined);
      }));

    it('a deleted veth pair frees both names at once, passes nothing, and is gone after settle()', (t) =>
      withSandbox(async (fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.98.0.1/24');
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        await k.addrAdd(sb, 'cnmeth0', '10.98.0.2/24');
        // Traffic: the fake carries none (it declares so); the real kernels pass it, then nothing once deleted.
        const hostPing = fx.real ? (ip: string) => probePing(inNetnsPath(fx.hostNetnsPath!), ip) : undefined;
        if (hostPing) reached(await hostPing('10.98.0.2'), 'the bridge reaches the sandbox through the pair');
        else t.diagnostic('fake kernel carries no traffic: names and bookkeeping are still checked');
        await k.linkDel(null, 'cnmv0', { background: true });
        if (hostPing) blocked(await hostPing('10.98.0.2'), 'the retired pair passes nothing', ['timeout', 'unreachable']);
        // Same names again straight away (a disconnect followed by a connect to the same sandbox).
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        assert.deepEqual(names(await k.linkList(sb)).sort(), ['cnmeth0', 'lo']);
        assert.deepEqual(names(await k.linkList(null)).filter((n) => n !== 'lo').sort(), ['cnmbr0', 'cnmv0']);
        if (hostPing) {
          await k.addrAdd(sb, 'cnmeth0', '10.98.0.3/24');
          reached(await hostPing('10.98.0.3'), 'the new pair under the same names passes traffic');
          blocked(await hostPing('10.98.0.2'), 'the retired sandbox end still passes nothing', ['timeout', 'unreachable']);
        }
        await k.linkDel(null, 'cnmv0', { background: true });
        await k.settle();
        if (!fx.real) return;
        // Nothing of either pair is left in the kernel, tombstones included (ip sees them; linkList hides them).
        const { execFileSync } = await import('node:child_process');
        const raw = (path: string) => execFileSync('nsenter', [`--net=${path}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
        assert.doesNotMatch(raw(sb), /cnm/);
        assert.deepEqual(raw(fx.hostNetnsPath!).match(/cnm\w+/g)?.sort(), ['cnmbr0']);
      }));

    it('a retired host end is out of reach by name: changes to it fail as for a missing link', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb } });
        await k.linkSet(null, 'cnmv0', { up: true });
        assert.equal((await mustGet(k, null, 'cnmv0')).up, true);
        // Retired, not destroyed yet (the reaper runs after this turn of the event loop): still named cnmv0.
        await k.linkDel(null, 'cnmv0', { background: true });
        await expectKernelError(k.linkSet(null, 'cnmv0', { up: false }), ['ENODEV']);
        await expectKernelError(k.linkSet(null, 'cnmv0', { mtu: 1400 }), ['ENODEV']);
        await expectKernelError(k.addrAdd(null, 'cnmv0', '10.9.9.1/24'), ['ENODEV']);
        await expectKernelError(k.routeReplace(null, { dst: '10.9.8.0/24', dev: 'cnmv0', family: 4 }), ['ENODEV']);
        assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
        // A new link under the name is reached by it.
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb } });
        await k.linkSet(null, 'cnmv0', { up: true, mtu: 1400 });
        const fresh = await mustGet(k, null, 'cnmv0');
        assert.deepEqual([fresh.up, fresh.mtu], [true, 1400]);
        await k.settle();
      }));

    it('a background deletion with untilDestroyed returns once the pair is gone: nothing of it is left in the other namespace', () =>
      withSandbox(async (fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        const raw = (path: string) => execFileSync('nsenter', [`--net=${path}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
        await k.linkDel(null, 'cnmv0', { background: true, untilDestroyed: true });
        if (fx.real) {
          // The kernel itself, before anything else runs, tombstones included (ip sees them; linkList hides
          // them): no husk in the sandbox, only the bridge on the host side.
          assert.doesNotMatch(raw(sb), /cnm/);
          assert.deepEqual(raw(fx.hostNetnsPath!).match(/cnm\w+/g)?.sort(), ['cnmbr0']);
        }
        assert.deepEqual(names(await k.linkList(sb)), ['lo']);
        assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
      }));

    it("a veth's sandbox end is addressed by its current name right after it is made: renamed, replaced or deleted in the same turn", () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        const addresses = async (ifname: string) => (await k.addrList(sb, ifname)).map((a) => a.cidr);
        // Made, then addressed at once: on it.
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv2', master: 'cnmbr0', peer: { name: 'cnmeth2', netns: sb } });
        await k.addrAdd(sb, 'cnmeth2', '10.9.2.2/24');
        assert.deepEqual(await addresses('cnmeth2'), ['10.9.2.2/24']);
        // Renamed before its address: the old name is gone, the new one takes it.
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb } });
        await k.linkSet(sb, 'cnmeth0', { name: 'cnmeth7' });
        await expectKernelError(k.addrAdd(sb, 'cnmeth0', '10.9.0.2/24'), ['ENODEV']);
        await k.addrAdd(sb, 'cnmeth7', '10.9.0.2/24');
        assert.deepEqual(await addresses('cnmeth7'), ['10.9.0.2/24']);
        // Deleted (through its host end) and its name taken by another link: the address goes to that one.
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv1', master: 'cnmbr0', peer: { name: 'cnmeth1', netns: sb } });
        await k.linkDel(null, 'cnmv1');
        await k.linkAdd(sb, { kind: 'bridge', name: 'cnmeth1' });
        await k.addrAdd(sb, 'cnmeth1', '10.9.1.2/24');
        assert.equal((await mustGet(k, sb, 'cnmeth1')).kind, 'bridge');
        assert.deepEqual(await addresses('cnmeth1'), ['10.9.1.2/24']);
      }));

    it('many background deletions in a row never fill the bridge: more pairs than its 1,024 ports come and go', (t) =>
      withSandbox(async (fx, k, sb) => {
        if (!fx.real) t.diagnostic('fake kernel: no port limit, the bookkeeping is still checked');
        if (fx.slowSteps) t.diagnostic('a process per step: 50 pairs, the bookkeeping is still checked');
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        // A bridge holds at most 1,024 ports, retired ones included until they are destroyed: deleting one
        // pair at a time would fall behind and creation would fail with EXFULL.
        for (let i = 0; i < (fx.slowSteps ? 50 : 1100); i++) {
          await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb } });
          await k.linkDel(null, 'cnmv0', { background: true });
        }
        await k.settle();
        assert.deepEqual(names(await k.linkList(null)).filter((n) => n !== 'lo'), ['cnmbr0']);
        assert.deepEqual(names(await k.linkList(sb)), ['lo']);
      }));

    it('a deleted bridge frees its name and gateway at once; the new one keeps its route after settle()', (t) =>
      withFixture(async (fx, k) => {
        const route = async () => (await k.routeList(null, 4)).find((r) => r.dst === '10.97.0.0/24');
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.97.0.1/24');
        await k.linkDel(null, 'cnmbr0', { background: true });
        assert.equal(await route(), undefined, 'no route of the deleted bridge');
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.97.0.1/24');
        await k.settle();
        assert.equal((await route())?.dev, 'cnmbr0');
        assert.deepEqual((await k.addrList(null, 'cnmbr0')).filter((a) => a.family === 4).map((a) => a.cidr), ['10.97.0.1/24']);
        await k.linkDel(null, 'cnmbr0', { background: true });
        await k.settle();
        if (!fx.real) return t.diagnostic('fake kernel: nothing pending to observe');
        const { execFileSync } = await import('node:child_process');
        assert.doesNotMatch(execFileSync('nsenter', [`--net=${fx.hostNetnsPath!}`, 'ip', '-o', 'link'], { encoding: 'utf8' }), /cnm/);
      }));

    it('deleting a lower device deletes the macvlans and vxlans on it', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(null, { kind: 'macvlan', name: 'cnmmv0', parent: 'cnmbr0', mode: 'bridge' });
        await k.linkAdd(null, { kind: 'macvlan', name: 'cnmmv1', parent: 'cnmbr0', mode: 'bridge', netns: sb });
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 7, dev: 'cnmbr0' });
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx1', vni: 8 });
        await k.linkDel(null, 'cnmbr0');
        assert.deepEqual(names(await k.linkList(null)).filter((n) => n !== 'lo'), ['cnmvx1']);
        assert.equal(await k.linkGet(sb, 'cnmmv1'), undefined);
      }));

    it('deleting a bridge releases its ports', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', master: 'cnmbr0', peer: { name: 'cnmv1' } });
        await k.linkDel(null, 'cnmbr0');
        assert.equal((await mustGet(k, null, 'cnmv0')).master, undefined);
      }));
  });

  describe('errors', () => {
    it('duplicate link name: EEXIST', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' }), ['EEXIST']);
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await expectKernelError(k.linkAdd(null, { kind: 'veth', name: 'cnmv2', peer: { name: 'cnmbr0' } }), ['EEXIST']);
        assert.equal(await k.linkGet(null, 'cnmv2'), undefined, 'a failed veth add leaves nothing behind');
      }));

    it('missing master, parent or link: ENODEV/ENOENT', () =>
      withFixture(async (_fx, k) => {
        const missing = ['ENODEV', 'ENOENT'];
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', master: 'cnmnobr' }), missing);
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await expectKernelError(k.linkSet(null, 'cnmv0', { master: 'cnmnobr' }), missing);
        assert.equal((await mustGet(k, null, 'cnmv0')).master, undefined);
        await expectKernelError(k.linkSet(null, 'cnmnothere', { up: true }), missing);
        await expectKernelError(k.addrAdd(null, 'cnmnothere', '10.0.0.1/24'), missing);
        await expectKernelError(
          k.linkAdd(null, { kind: 'macvlan', name: 'cnmmv0', parent: 'cnmnothere', mode: 'bridge' }),
          missing,
        );
      }));

    it('invalid names, MTUs and MACs: EINVAL / EADDRNOTAVAIL, nothing created', () =>
      withFixture(async (_fx, k) => {
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnm-name-too-long0' }), ['EINVAL']);
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 70000 }), ['EINVAL']);
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 60 }), ['EINVAL']);
        await expectKernelError(k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mac: '01:00:5e:00:00:01' }), ['EADDRNOTAVAIL']);
        assert.equal(await k.linkGet(null, 'cnmbr0'), undefined);
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await expectKernelError(k.linkSet(null, 'cnmv0', { mtu: 70000 }), ['EINVAL']);
        assert.equal((await mustGet(k, null, 'cnmv0')).mtu, 1500);
      }));

    it('linkSet netns with a master: the master is looked up in the target; missing, the link stays put', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(sb, { kind: 'bridge', name: 'cnmbr0' });
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await expectKernelError(k.linkSet(null, 'cnmv1', { netns: sb, master: 'cnmnobr' }), ['ENODEV', 'ENOENT']);
        assert.ok(await k.linkGet(null, 'cnmv1'));
        await k.linkSet(null, 'cnmv1', { netns: sb, master: 'cnmbr0', up: true });
        const moved = await mustGet(k, sb, 'cnmv1');
        assert.deepEqual([moved.master, moved.up], ['cnmbr0', true]);
      }));

    it('a bridge cannot change namespace: EINVAL', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await expectKernelError(k.linkSet(null, 'cnmbr0', { netns: sb }), ['EINVAL']);
        assert.ok(await k.linkGet(null, 'cnmbr0'));
      }));

    it('a second vxlan with the same VNI and port: EEXIST; another port is fine', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 42 });
        await expectKernelError(k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx1', vni: 42, dstPort: 4789 }), ['EEXIST']);
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx2', vni: 42, dstPort: 4790 });
        assert.equal(await k.linkGet(null, 'cnmvx1'), undefined);
      }));

    it('a namespace path that is not a namespace: error, nothing created', () =>
      withFixture(async (fx, k) => {
        const bogus = fx.newNetnsPath();
        await assert.rejects(k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1', netns: bogus } }), KernelError);
        assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
        await assert.rejects(k.linkList(bogus), KernelError);
      }));
  });
}
