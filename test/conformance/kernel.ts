/**
 * The KernelOps conformance suite: every implementation (netlink, iproute2, the fake) calls
 * kernelConformance once from its own *.test.ts file. Each case gets a fresh fixture, so cases never
 * see each other's links. `null` always means the fixture's host namespace (a throwaway cnmt-* namespace
 * for real kernels), sandbox namespaces come from fx.newNetnsPath().
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KernelError } from '../../src/errors.js';
import type { KernelOps, LinkInfo, NetnsRef, RouteInfo } from '../../src/kernel/types.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';

const execFileAsync = promisify(execFile);

export interface KernelFixture {
  kernel: KernelOps;
  /** A fresh path where a sandbox namespace may be created with kernel.createNetns. */
  newNetnsPath(): string;
  /** Live traffic checks possible (false for the fake). */
  real: boolean;
  cleanup(): Promise<void>;
}

/**
 * Fixture for implementations that talk to the real kernel: a throwaway host namespace that `null`
 * maps to, sandbox namespace files in a temp dir, everything removed by cleanup (also after failures).
 */
export async function realKernelFixture(makeKernel: (hostNetns: string) => KernelOps): Promise<KernelFixture> {
  const hostName = createTestNetns();
  const dir = await mkdtemp(join(tmpdir(), 'cnmt-ns-'));
  const kernel = makeKernel(netnsPath(hostName));
  const handedOut: string[] = [];
  return {
    kernel,
    real: true,
    newNetnsPath() {
      const path = join(dir, `cnmt-sb${handedOut.length}`);
      handedOut.push(path);
      return path;
    },
    async cleanup() {
      // Unpin through plain umount rather than the kernel under test: cleanup must work even when it is broken.
      for (const path of handedOut) await execFileAsync('umount', [path]).catch(() => undefined);
      kernel.close();
      await rm(dir, { recursive: true, force: true });
      deleteTestNetns(hostName);
    },
  };
}

export function kernelConformance(label: string, setup: () => Promise<KernelFixture>): void {
  async function withFixture(fn: (fx: KernelFixture, k: KernelOps) => Promise<void>): Promise<void> {
    const fx = await setup();
    try {
      await fn(fx, fx.kernel);
    } finally {
      await fx.cleanup();
    }
  }
  async function withSandbox(fn: (fx: KernelFixture, k: KernelOps, sb: string) => Promise<void>): Promise<void> {
    await withFixture(async (fx, k) => {
      const sb = fx.newNetnsPath();
      await k.createNetns(sb);
      await fn(fx, k, sb);
    });
  }

  describe(`KernelOps conformance: ${label}`, () => {
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
          assert.ok(br.index > 1);
          const listed = (await k.linkList(null)).find((l) => l.name === 'cnmbr0');
          assert.deepEqual(listed, br);
        }));

      it('dummy: created down by default, enslaved at creation', (t) =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
          if (!(await addOrSkipUnsupported(t, k.linkAdd(null, { kind: 'dummy', name: 'cnmd0', master: 'cnmbr0' })))) return;
          const d = await mustGet(k, null, 'cnmd0');
          assert.equal(d.kind, 'dummy');
          assert.equal(d.up, false);
          assert.equal(d.master, 'cnmbr0');
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

      it('a namespace path that is not a namespace: error, nothing created', () =>
        withFixture(async (fx, k) => {
          const bogus = fx.newNetnsPath();
          await assert.rejects(k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1', netns: bogus } }), KernelError);
          assert.equal(await k.linkGet(null, 'cnmv0'), undefined);
          await assert.rejects(k.linkList(bogus), KernelError);
        }));
    });

    describe('addresses', () => {
      it('IPv4: add, re-add, list, filter by link, delete idempotently', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr1' });
          await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
          await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
          await k.addrAdd(null, 'cnmbr1', '10.99.1.1/24');
          assert.deepEqual(await k.addrList(null, 'cnmbr0'), [{ ifname: 'cnmbr0', cidr: '10.99.0.1/24', family: 4 }]);
          const all = await k.addrList(null);
          assert.ok(all.some((a) => a.ifname === 'lo' && a.cidr === '127.0.0.1/8' && a.family === 4));
          assert.ok(all.some((a) => a.ifname === 'cnmbr1' && a.cidr === '10.99.1.1/24'));
          await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
          assert.deepEqual(await k.addrList(null, 'cnmbr0'), []);
          await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
          await k.addrDel(null, 'cnmnothere', '10.99.0.1/24');
        }));

      it('IPv6: add, re-add, list, delete', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
          await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
          await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
          const v6 = (await k.addrList(null, 'cnmbr0')).filter((a) => !a.cidr.startsWith('fe80:'));
          assert.deepEqual(v6, [{ ifname: 'cnmbr0', cidr: 'fd00:99::1/64', family: 6 }]);
          await k.addrDel(null, 'cnmbr0', 'fd00:99::1/64');
          assert.ok(!(await k.addrList(null, 'cnmbr0')).some((a) => a.cidr === 'fd00:99::1/64'));
          await k.addrDel(null, 'cnmbr0', 'fd00:99::1/64');
        }));

      it('addresses in a sandbox stay there', () =>
        withSandbox(async (_fx, k, sb) => {
          await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb, up: true } });
          await k.addrAdd(sb, 'cnmeth0', '10.99.0.2/24');
          assert.ok((await k.addrList(sb)).some((a) => a.cidr === '10.99.0.2/24' && a.ifname === 'cnmeth0'));
          assert.ok(!(await k.addrList(null)).some((a) => a.cidr === '10.99.0.2/24'));
        }));
    });

    describe('routes', () => {
      it('a connected route follows an address on an up link', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
          await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
          assert.equal(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), undefined, 'no route while down');
          await k.linkSet(null, 'cnmbr0', { up: true });
          const r = findRoute(await k.routeList(null, 4), '10.99.0.0/24');
          assert.deepEqual([r?.dev, r?.protocol, r?.scope, r?.family], ['cnmbr0', 'kernel', 'link', 4]);
          await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
          const r6 = findRoute(await k.routeList(null, 6), 'fd00:99::/64');
          assert.deepEqual([r6?.dev, r6?.protocol, r6?.family], ['cnmbr0', 'kernel', 6]);
          await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
          assert.equal(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), undefined, 'gone with the address');
        }));

      it('IPv4 default route via a gateway: replace, replace again, delete idempotently', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
          await k.addrAdd(null, 'cnmbr0', '10.99.0.2/24');
          await k.routeReplace(null, { dst: 'default', via: '10.99.0.1', family: 4 });
          let defaults = (await k.routeList(null, 4)).filter((r) => r.dst === 'default');
          assert.deepEqual(defaults.map((r) => [r.via, r.dev, r.family]), [['10.99.0.1', 'cnmbr0', 4]]);
          await k.routeReplace(null, { dst: 'default', via: '10.99.0.254', dev: 'cnmbr0', family: 4 });
          defaults = (await k.routeList(null, 4)).filter((r) => r.dst === 'default');
          assert.deepEqual(defaults.map((r) => r.via), ['10.99.0.254']);
          await k.routeDel(null, { dst: 'default', via: '10.99.0.254', family: 4 });
          assert.equal(findRoute(await k.routeList(null, 4), 'default'), undefined);
          await k.routeDel(null, { dst: 'default', via: '10.99.0.254', family: 4 });
        }));

      it('IPv4 prefix routes with dev and metric; same dst with two metrics coexist', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
          await k.addrAdd(null, 'cnmbr0', '10.99.0.2/24');
          await k.routeReplace(null, { dst: '10.50.0.0/16', dev: 'cnmbr0', metric: 100, family: 4 });
          await k.routeReplace(null, { dst: '10.50.0.0/16', via: '10.99.0.9', metric: 200, family: 4 });
          await k.routeReplace(null, { dst: '10.50.0.0/16', via: '10.99.0.1', metric: 200, family: 4 });
          const found = (await k.routeList(null, 4)).filter((r) => r.dst === '10.50.0.0/16');
          found.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
          assert.deepEqual(found.map((r) => [r.metric, r.via, r.dev]), [[100, undefined, 'cnmbr0'], [200, '10.99.0.1', 'cnmbr0']]);
          await k.routeDel(null, { dst: '10.50.0.0/16', metric: 100, family: 4 });
          const left = (await k.routeList(null, 4)).filter((r) => r.dst === '10.50.0.0/16');
          assert.deepEqual(left.map((r) => r.metric), [200]);
        }));

      it('IPv6 default route via a gateway and a prefix route', () =>
        withFixture(async (_fx, k) => {
          await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, peer: { name: 'cnmv1', up: true } });
          await k.addrAdd(null, 'cnmv0', 'fd00:99::2/64');
          await k.routeReplace(null, { dst: 'default', via: 'fd00:99::1', dev: 'cnmv0', family: 6 });
          await k.routeReplace(null, { dst: 'fd00:50::/48', dev: 'cnmv0', family: 6 });
          const routes = await k.routeList(null, 6);
          assert.deepEqual(pick(findRoute(routes, 'default')), ['fd00:99::1', 'cnmv0', 6]);
          assert.deepEqual(pick(findRoute(routes, 'fd00:50::/48')), [undefined, 'cnmv0', 6]);
          assert.ok(routes.every((r) => r.family === 6));
          await k.routeDel(null, { dst: 'default', via: 'fd00:99::1', dev: 'cnmv0', family: 6 });
          assert.equal(findRoute(await k.routeList(null, 6), 'default'), undefined);
        }));

      it('routes live in their namespace; a gateway off-link is refused', () =>
        withSandbox(async (_fx, k, sb) => {
          await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb, up: true } });
          await k.addrAdd(sb, 'cnmeth0', '10.99.0.2/24');
          await k.routeReplace(sb, { dst: 'default', via: '10.99.0.1', family: 4 });
          assert.deepEqual(pick(findRoute(await k.routeList(sb, 4), 'default')), ['10.99.0.1', 'cnmeth0', 4]);
          assert.equal(findRoute(await k.routeList(null, 4), 'default'), undefined);
          await expectKernelError(k.routeReplace(sb, { dst: '10.60.0.0/16', via: '10.200.0.1', family: 4 }), ['ENETUNREACH']);
        }));
    });

    describe('sysctl', () => {
      it('global keys are per namespace', () =>
        withSandbox(async (_fx, k, sb) => {
          await k.sysctlSet(null, 'net.ipv4.ip_forward', '1');
          await k.sysctlSet(sb, 'net.ipv4.ip_forward', '0');
          assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '1');
          assert.equal(await k.sysctlGet(sb, 'net.ipv4.ip_forward'), '0');
          await k.sysctlSet(sb, 'net.ipv4.ip_forward', '1');
          await k.sysctlSet(null, 'net.ipv4.ip_forward', '0');
          assert.equal(await k.sysctlGet(sb, 'net.ipv4.ip_forward'), '1');
          assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '0');
        }));

      it('per-interface keys exist while the interface does', () =>
        withSandbox(async (_fx, k, sb) => {
          await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb } });
          await k.sysctlSet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6', '1');
          assert.equal(await k.sysctlGet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6'), '1');
          await k.sysctlSet(null, 'net.ipv4.conf.cnmv0.route_localnet', '1');
          assert.equal(await k.sysctlGet(null, 'net.ipv4.conf.cnmv0.route_localnet'), '1');
          await expectKernelError(k.sysctlGet(null, 'net.ipv6.conf.cnmeth0.disable_ipv6'), ['ENOENT']);
          await k.linkDel(null, 'cnmv0');
          await expectKernelError(k.sysctlGet(null, 'net.ipv4.conf.cnmv0.route_localnet'), ['ENOENT']);
        }));

      it('an unknown key: ENOENT', () =>
        withFixture(async (_fx, k) => {
          await expectKernelError(k.sysctlGet(null, 'net.ipv4.cnm_no_such_key'), ['ENOENT']);
          await expectKernelError(k.sysctlSet(null, 'net.ipv4.cnm_no_such_key', '1'), ['ENOENT']);
        }));
    });

    describe('traffic (real kernels only)', () => {
      it('two sandboxes on one bridge ping each other', (t) =>
        withFixture(async (fx, k) => {
          if (!fx.real) return void t.skip('fake kernel carries no traffic');
          const [a, b] = [fx.newNetnsPath(), fx.newNetnsPath()];
          await k.createNetns(a);
          await k.createNetns(b);
          await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
          for (const [sb, i] of [[a, 2], [b, 3]] as const) {
            await k.linkAdd(null, { kind: 'veth', name: `cnmv${i}`, up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb, up: true } });
            await k.addrAdd(sb, 'cnmeth0', `10.99.0.${i}/24`);
          }
          assert.equal(await ping(a, '10.99.0.3'), true, 'a reaches b');
          assert.equal(await ping(b, '10.99.0.2'), true, 'b reaches a');
          await k.linkDel(null, 'cnmv3');
          assert.equal(await ping(a, '10.99.0.3', 1), false, 'unplugged b is unreachable');
        }));
    });
  });
}

function names(links: LinkInfo[]): string[] {
  return links.map((l) => l.name);
}

function pick(r: RouteInfo | undefined): unknown[] {
  return [r?.via, r?.dev, r?.family];
}

function findRoute(routes: RouteInfo[], dst: string): RouteInfo | undefined {
  return routes.find((r) => r.dst === dst);
}

async function mustGet(k: KernelOps, ns: NetnsRef, name: string): Promise<LinkInfo> {
  const link = await k.linkGet(ns, name);
  assert.ok(link, `link ${name} exists`);
  assert.equal(link.name, name);
  return link;
}

async function expectKernelError(p: Promise<unknown>, errnos: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof KernelError, `expected KernelError, got ${String(err)}`);
    assert.ok(errnos.includes(err.errno ?? ''), `errno ${err.errno} (${err.message}) not one of ${errnos.join(', ')}`);
    return true;
  });
}

/** True when created; false (and the test skipped) when the running kernel lacks the link kind. */
async function addOrSkipUnsupported(t: TestContext, p: Promise<void>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    if (err instanceof KernelError && err.errno === 'EOPNOTSUPP') {
      t.skip('link kind not built into this kernel');
      return false;
    }
    throw err;
  }
}

/** Poll until `check` holds; fails after a generous deadline (an outcome check, not a timing assertion). */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`never became true: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ping from inside a namespace; retried because the first packets may race neighbour resolution. */
async function ping(nsPath: string, ip: string, attempts = 3): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    try {
      await execFileAsync('nsenter', [`--net=${nsPath}`, 'ping', '-c1', '-W1', ip]);
      return true;
    } catch {
      /* try again */
    }
  }
  return false;
}
