/**
 * The overlay data plane on the real kernel: three host namespaces on an underlay switch, a bridge and a
 * VXLAN device per VNI in each (made through KernelOps), sandboxes on them, and remote peers programmed
 * up front as static FDB + neighbour entries (no learning, no miss handlers) by reconcilePeers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planPeers } from '../../src/drivers/overlay/peers.js';
import { readPeerTables, reconcilePeers } from '../../src/drivers/overlay/peer-apply.js';
import { overlayMtu } from '../../src/drivers/overlay/mtu.js';
import { type LabEndpoint, type LabHost, OverlayLab, UNDERLAY_MTU, vxlanOf } from '../helpers/overlay-lab.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { assertReachedThenBlocked, inNetnsPath, ping, pingDf, reached } from '../helpers/probe.js';

const SKIP = realKernelSkip();
const VNI_A = 5001;
const VNI_B = 5002;
const MTU = overlayMtu(UNDERLAY_MTU, 4);

/** Program (or repair) `host`'s device for `vni` so it knows exactly the given endpoints' peers. */
async function program(lab: OverlayLab, host: LabHost, vni: number, except: string[] = []) {
  const result = await reconcilePeers(host.kernel, null, { ifname: vxlanOf(vni), peers: lab.peersOf(vni, except), localVtep: host.vtep });
  assert.deepEqual(result.failed, []);
  assert.deepEqual(result.plan.rejected, []);
  return result.plan.ops;
}

const pingFrom = (from: LabEndpoint, to: LabEndpoint) => ping(inNetnsPath(from.path), to.ip);

describe('VXLAN overlay across three host namespaces', { skip: SKIP }, () => {
  const lab = new OverlayLab();
  let a: LabEndpoint, b: LabEndpoint, c: LabEndpoint, d: LabEndpoint, e: LabEndpoint;

  before(async () => {
    try {
      await lab.start(3);
      const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
      for (const host of lab.hosts) await lab.addNetwork(host, VNI_A, MTU);
      for (const host of [h1, h2]) await lab.addNetwork(host, VNI_B, MTU);
      a = await lab.addEndpoint('a', h1, VNI_A, '10.77.0.1', '02:42:0a:4d:00:01', MTU);
      b = await lab.addEndpoint('b', h2, VNI_A, '10.77.0.2', '02:42:0a:4d:00:02', MTU);
      c = await lab.addEndpoint('c', h3, VNI_A, '10.77.0.3', '02:42:0a:4d:00:03', MTU);
      // The second network reuses the first one's subnet: only the VNI keeps them apart.
      d = await lab.addEndpoint('d', h1, VNI_B, '10.77.0.11', '02:42:0a:4d:00:11', MTU);
      e = await lab.addEndpoint('e', h2, VNI_B, '10.77.0.12', '02:42:0a:4d:00:12', MTU);
      for (const host of lab.hosts) await program(lab, host, VNI_A);
      for (const host of [h1, h2]) await program(lab, host, VNI_B);
    } catch (err) {
      lab.close();
      throw err;
    }
  });

  after(() => lab.close());

  it('the devices hold exactly the remote peers, as static permanent entries, and learn nothing', async () => {
    const h1 = lab.hosts[0]!;
    const tables = await readPeerTables(h1.kernel, null, vxlanOf(VNI_A));
    assert.deepEqual(tables.fdb.filter((f) => f.permanent).map((f) => `${f.mac} ${f.dst}`).sort(), [
      `${b.mac} ${b.vtep}`, `${c.mac} ${c.vtep}`,
    ]);
    assert.deepEqual(tables.neighbours.filter((n) => n.permanent).map((n) => `${n.ip} ${n.mac}`).sort(), [
      `${b.ip} ${b.mac}`, `${c.ip} ${c.mac}`,
    ]);
    const vx = await h1.kernel.linkGet(null, vxlanOf(VNI_A));
    assert.deepEqual(vx?.vxlan, {
      vni: VNI_A, local: h1.vtep, port: 4789, learning: false, arpProxy: true, ttl: 0, udpChecksum: false, txChecksumOffload: false,
    });
  });

  it('sandboxes on different hosts ping each other', async () => {
    for (const [from, to] of [[a, b], [a, c], [b, c], [c, a], [b, a], [c, b]] as const) {
      reached(await pingFrom(from, to), `${from.name}@host${from.host.index} → ${to.name}@host${to.host.index}`);
    }
    reached(await pingFrom(d, e), 'the second network works too');
    // Nothing was learned on the way: the tables are still exactly what was programmed.
    for (const host of lab.hosts) {
      const tables = await readPeerTables(host.kernel, null, vxlanOf(VNI_A));
      assert.ok(tables.fdb.every((f) => f.permanent), `host${host.index}: no learned FDB entries`);
      assert.deepEqual(planPeers({ ifname: vxlanOf(VNI_A), peers: lab.peersOf(VNI_A), localVtep: host.vtep }, tables).ops, []);
    }
  });

  it('a second VNI on the same hosts is isolated, even when a frame is sent to the right host', async () => {
    // d reaches e on its own VNI; a, on the other VNI and in the same subnet, has no entry for e.
    await assertReachedThenBlocked((ip) => ping(inNetnsPath(d.path), ip), e.ip, '10.77.0.99', 'd on VNI B');
    await assertReachedThenBlocked((ip) => ping(inNetnsPath(a.path), ip), b.ip, e.ip, 'a on VNI A → e on VNI B');
    // Mis-program host1's VNI-A device to send e's MAC to host2: the frame arrives there with VNI A and
    // must not come out on VNI B's bridge.
    const h1 = lab.hosts[0]!;
    await h1.kernel.fdbAdd(null, { ifname: vxlanOf(VNI_A), mac: e.mac, dst: e.vtep });
    await h1.kernel.neighReplace(null, { ifname: vxlanOf(VNI_A), ip: e.ip, mac: e.mac });
    await assertReachedThenBlocked((ip) => ping(inNetnsPath(a.path), ip), b.ip, e.ip, 'a → e through a VNI-A tunnel to e\'s host');
    // Reconcile removes exactly the two foreign entries.
    const ops = await program(lab, h1, VNI_A);
    assert.deepEqual(ops.map((o) => o.op).sort(), ['fdbDel', 'neighDel']);
  });

  it('removing the FDB and neighbour entries of a peer stops traffic to it; programming them again restores it', async () => {
    const h1 = lab.hosts[0]!;
    reached(await pingFrom(a, c), 'a → c before');
    const ops = await program(lab, h1, VNI_A, ['c']);
    assert.deepEqual(ops.map((o) => o.op), ['neighDel', 'fdbDel']);
    // a's own ARP cache still holds c's MAC: with no FDB entry the VXLAN device has nowhere to send it.
    await assertReachedThenBlocked((ip) => ping(inNetnsPath(a.path), ip), b.ip, c.ip, 'a → c without c\'s entries');
    assert.deepEqual((await program(lab, h1, VNI_A)).map((o) => o.op), ['fdbAdd', 'neighReplace']);
    reached(await pingFrom(a, c), 'a → c after programming again');
  });

  it('a stale entry left by a reboot (c\'s MAC at the wrong host) is repaired by one replace', async () => {
    const h1 = lab.hosts[0]!;
    await h1.kernel.fdbAdd(null, { ifname: vxlanOf(VNI_A), mac: c.mac, dst: b.vtep });
    await assertReachedThenBlocked((ip) => ping(inNetnsPath(a.path), ip), b.ip, c.ip, 'a → c through a stale entry');
    const ops = await program(lab, h1, VNI_A);
    assert.deepEqual(ops, [{ op: 'fdbAdd', entry: { ifname: vxlanOf(VNI_A), mac: c.mac, dst: c.vtep } }]);
    reached(await pingFrom(a, c), 'a → c after the repair');
  });

  it(`the overlay MTU is the underlay's less 50 (${MTU}): a DF packet of exactly that crosses, one byte more does not`, async () => {
    const run = inNetnsPath(a.path);
    assert.deepEqual(await pingDf(run, b.ip, MTU), { outcome: 'reached' }, `${MTU}-byte DF packet a → b`);
    assert.deepEqual(await pingDf(run, c.ip, MTU), { outcome: 'reached' }, `${MTU}-byte DF packet a → c`);
    assert.deepEqual(await pingDf(run, b.ip, MTU + 1), { outcome: 'blocked', how: 'too-big', where: 'local', mtu: MTU });
    // Give a's whole path one byte more than the math allows: the tunnel itself refuses the packet and
    // names the largest inner packet the underlay carries — the same number.
    const h1 = lab.hosts[0]!;
    const wider = MTU + 1;
    try {
      await h1.kernel.linkSet(null, vxlanOf(VNI_A), { mtu: wider });
      await h1.kernel.linkSet(null, a.hostIfname, { mtu: wider });
      await h1.kernel.linkSet(a.path, a.ifname, { mtu: wider });
      assert.deepEqual(await pingDf(run, b.ip, wider), { outcome: 'blocked', how: 'too-big', where: 'path', mtu: MTU });
      assert.deepEqual(await pingDf(run, c.ip, MTU), { outcome: 'reached' }, 'a full-size packet still crosses');
    } finally {
      await h1.kernel.linkSet(a.path, a.ifname, { mtu: MTU });
      await h1.kernel.linkSet(null, a.hostIfname, { mtu: MTU });
      await h1.kernel.linkSet(null, vxlanOf(VNI_A), { mtu: MTU });
    }
  });
});
