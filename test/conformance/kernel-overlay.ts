/**
 * KernelOps conformance cases for what an overlay network programs: VXLAN devices read back with their
 * tunnel settings, a VXLAN device's FDB (MAC → underlay destination, the all-zeros flood list) and
 * permanent neighbour entries, in the host namespace and in another one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OWNER_GROUP, FLOOD_MAC, type FdbInfo, type KernelOps, type NeighInfo, type NetnsRef } from '../../src/kernel/types.js';
import { type CaseRunner, expectKernelError, mustGet } from './kernel-support.js';

const MAC_A = '02:42:0a:4d:00:0a';
const MAC_B = '02:42:0a:4d:00:0b';

function fdbKey(e: FdbInfo): string {
  return `${e.mac} ${e.dst} ${e.permanent ? 'permanent' : 'learned'}`;
}

async function fdb(k: KernelOps, ns: NetnsRef, ifname: string): Promise<string[]> {
  return (await k.fdbList(ns, ifname)).map((e) => {
    assert.equal(e.ifname, ifname);
    return fdbKey(e);
  }).sort();
}

/** Permanent entries only: a real kernel may hold others it resolved or made itself (IPv6 multicast). */
async function neighbours(k: KernelOps, ns: NetnsRef, ifname: string): Promise<string[]> {
  return (await k.neighList(ns, ifname)).filter((n: NeighInfo) => n.permanent).map((n) => `${n.ip} ${n.mac}`).sort();
}

export function overlayCases({ real, withFixture, withSandbox }: CaseRunner): void {
  // Entries the kernel learns or resolves itself: the fake learns nothing, so the case is not registered for it.
  const realIt = (name: string, fn: () => Promise<void>) => (real ? it(name, fn) : undefined);
  describe('overlay: vxlan devices, FDB and neighbour entries', () => {
    it('a vxlan reads back its VNI, local address, port, learning, proxy, TTL and checksum settings', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 1450, up: true });
        await k.linkAdd(null, {
          kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', learning: false, arpProxy: true, ttl: 64,
          udpChecksum: true, txChecksumOffload: false, mtu: 1450, master: 'cnmbr0', group: DEFAULT_OWNER_GROUP, up: true,
        });
        const vx = await mustGet(k, null, 'cnmvx0');
        assert.deepEqual([vx.kind, vx.mtu, vx.master, vx.group, vx.up], ['vxlan', 1450, 'cnmbr0', DEFAULT_OWNER_GROUP, true]);
        assert.deepEqual(vx.vxlan, {
          vni: 5001, local: '10.98.0.1', port: 4789, learning: false, arpProxy: true, ttl: 64, udpChecksum: true, txChecksumOffload: false,
        });
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx1', vni: 4097, dstPort: 8472, local: 'fd00:98::1' });
        const v6 = await mustGet(k, null, 'cnmvx1');
        assert.equal(v6.mtu, 1500, 'no MTU and no underlay device: the Ethernet default, not a guess');
        assert.deepEqual(v6.vxlan, {
          vni: 4097, local: 'fd00:98::1', port: 8472, learning: false, arpProxy: false, ttl: 0, udpChecksum: false, txChecksumOffload: true,
        });
        const listed = (await k.linkList(null)).find((l) => l.name === 'cnmvx0');
        assert.equal(listed?.vxlan?.vni, 5001, 'linkList reports the tunnel too');
        assert.equal((await mustGet(k, null, 'cnmbr0')).vxlan, undefined, 'only vxlan links carry it');
      }));

    it('a VNI of 2^24 or more is refused and leaves nothing', () =>
      withFixture(async (_fx, k) => {
        await expectKernelError(k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 1 << 24 }), ['ERANGE', 'EINVAL']);
        assert.equal(await k.linkGet(null, 'cnmvx0'), undefined);
      }));

    it('FDB: a unicast MAC has one destination (replaced), the flood MAC a list (appended once)', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', up: true });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.2' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.3' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: MAC_B, dst: '10.98.0.2' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: FLOOD_MAC, dst: '10.98.0.2' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: FLOOD_MAC, dst: '10.98.0.3' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: FLOOD_MAC, dst: '10.98.0.3' });
        assert.deepEqual(await fdb(k, null, 'cnmvx0'), [
          `${FLOOD_MAC} 10.98.0.2 permanent`, `${FLOOD_MAC} 10.98.0.3 permanent`,
          `${MAC_A} 10.98.0.3 permanent`, `${MAC_B} 10.98.0.2 permanent`,
        ]);
        await k.fdbDel(null, { ifname: 'cnmvx0', mac: FLOOD_MAC, dst: '10.98.0.2' });
        await k.fdbDel(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.3' });
        assert.deepEqual(await fdb(k, null, 'cnmvx0'), [`${FLOOD_MAC} 10.98.0.3 permanent`, `${MAC_B} 10.98.0.2 permanent`]);
        // An IPv6 underlay.
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx6', vni: 5006, local: 'fd00:98::1', up: true });
        await k.fdbAdd(null, { ifname: 'cnmvx6', mac: MAC_A, dst: 'fd00:98:0:0::2' });
        assert.deepEqual(await fdb(k, null, 'cnmvx6'), [`${MAC_A} fd00:98::2 permanent`]);
      }));

    realIt('entries the kernel learned or resolved are listed as not permanent (real kernels only)', () =>
      withFixture(async (fx, k) => {
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', up: true });
        const { execFileSync } = await import('node:child_process');
        const run = (...argv: string[]) => execFileSync('nsenter', [`--net=${fx.hostNetnsPath!}`, ...argv], { encoding: 'utf8' });
        run('ip', 'neigh', 'replace', '10.77.0.7', 'lladdr', MAC_B, 'dev', 'cnmvx0', 'nud', 'reachable');
        run('bridge', 'fdb', 'add', MAC_B, 'dev', 'cnmvx0', 'dst', '10.98.0.7', 'self', 'dynamic');
        await k.neighReplace(null, { ifname: 'cnmvx0', ip: '10.77.0.8', mac: MAC_A });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.8' });
        assert.deepEqual(await fdb(k, null, 'cnmvx0'), [`${MAC_A} 10.98.0.8 permanent`, `${MAC_B} 10.98.0.7 learned`]);
        const listed = (await k.neighList(null, 'cnmvx0')).filter((n) => n.ip.startsWith('10.77.'));
        assert.deepEqual(listed.map((n) => `${n.ip} ${n.mac} ${n.permanent}`).sort(), [`10.77.0.7 ${MAC_B} false`, `10.77.0.8 ${MAC_A} true`]);
      }));

    it('FDB deletes are idempotent (missing entry, missing link); listing a missing link is ENODEV', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1' });
        await k.fdbAdd(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.2' });
        await k.fdbDel(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.2' });
        await k.fdbDel(null, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.2' });
        await k.fdbDel(null, { ifname: 'cnmvx0', mac: FLOOD_MAC, dst: '10.98.0.9' });
        await k.fdbDel(null, { ifname: 'cnmnothere', mac: MAC_A, dst: '10.98.0.2' });
        assert.deepEqual(await fdb(k, null, 'cnmvx0'), []);
        await expectKernelError(k.fdbList(null, 'cnmnothere'), ['ENODEV']);
        await expectKernelError(k.fdbAdd(null, { ifname: 'cnmnothere', mac: MAC_A, dst: '10.98.0.2' }), ['ENODEV']);
        await expectKernelError(k.fdbAdd(null, { ifname: 'cnmvx0', mac: 'nonsense', dst: '10.98.0.2' }), ['EINVAL']);
      }));

    it('neighbours: permanent IPv4 and IPv6 entries are added, replaced, listed and deleted', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', arpProxy: true, up: true });
        await k.neighReplace(null, { ifname: 'cnmvx0', ip: '10.77.0.2', mac: MAC_A });
        await k.neighReplace(null, { ifname: 'cnmvx0', ip: 'fd00:77::2', mac: MAC_A });
        await k.neighReplace(null, { ifname: 'cnmvx0', ip: '10.77.0.3', mac: MAC_A });
        await k.neighReplace(null, { ifname: 'cnmvx0', ip: '10.77.0.3', mac: MAC_B });
        assert.deepEqual(await neighbours(k, null, 'cnmvx0'), [`10.77.0.2 ${MAC_A}`, `10.77.0.3 ${MAC_B}`, `fd00:77::2 ${MAC_A}`]);
        await k.neighDel(null, 'cnmvx0', '10.77.0.2');
        await k.neighDel(null, 'cnmvx0', 'fd00:77::2');
        await k.neighDel(null, 'cnmvx0', 'fd00:77::2');
        assert.deepEqual(await neighbours(k, null, 'cnmvx0'), [`10.77.0.3 ${MAC_B}`]);
        await expectKernelError(k.neighList(null, 'cnmnothere'), ['ENODEV']);
        await expectKernelError(k.neighReplace(null, { ifname: 'cnmnothere', ip: '10.77.0.2', mac: MAC_A }), ['ENODEV']);
        await expectKernelError(k.neighReplace(null, { ifname: 'cnmvx0', ip: '10.77.0', mac: MAC_A }), ['EINVAL']);
      }));

    it('entries live in the namespace of their device (an overlay namespace of its own)', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(sb, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(sb, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', master: 'cnmbr0', arpProxy: true, up: true });
        await k.linkAdd(null, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1', up: true });
        await k.fdbAdd(sb, { ifname: 'cnmvx0', mac: MAC_A, dst: '10.98.0.2' });
        await k.neighReplace(sb, { ifname: 'cnmvx0', ip: '10.77.0.2', mac: MAC_A });
        assert.deepEqual(await fdb(k, sb, 'cnmvx0'), [`${MAC_A} 10.98.0.2 permanent`]);
        assert.deepEqual(await neighbours(k, sb, 'cnmvx0'), [`10.77.0.2 ${MAC_A}`]);
        assert.deepEqual(await fdb(k, null, 'cnmvx0'), [], 'the namesake in the host namespace has none');
        assert.deepEqual(await neighbours(k, null, 'cnmvx0'), []);
        assert.equal((await mustGet(k, sb, 'cnmvx0')).vxlan?.arpProxy, true);
        await k.linkDel(sb, 'cnmvx0');
        await k.linkAdd(sb, { kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.98.0.1' });
        assert.deepEqual(await fdb(k, sb, 'cnmvx0'), [], 'a new device starts with an empty table');
        assert.deepEqual(await neighbours(k, sb, 'cnmvx0'), []);
      }));
  });
}
