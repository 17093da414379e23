import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type PeerOp, type PeerTables, planPeers, type RemotePeer } from '../../src/drivers/overlay/peers.js';
import { readPeerTables, reconcilePeers } from '../../src/drivers/overlay/peer-apply.js';
import { overlayMtu } from '../../src/drivers/overlay/mtu.js';
import { FakeKernel } from '../../src/kernel/fake.js';
import { FLOOD_MAC, type FdbInfo, type NeighInfo } from '../../src/kernel/types.js';

const VX = 'cnmvx0';
const A: RemotePeer = { mac: '02:42:0a:4d:00:02', ips: ['10.77.0.2', 'fd00:77::2'], vtep: '10.199.0.2' };
const B: RemotePeer = { mac: '02:42:0a:4d:00:03', ips: ['10.77.0.3'], vtep: '10.199.0.3' };
const C: RemotePeer = { mac: '02:42:0a:4d:00:04', ips: ['10.77.0.4'], vtep: '10.199.0.3' };

const fdb = (mac: string, dst: string, permanent = true, ifname = VX): FdbInfo => ({ ifname, mac, dst, permanent });
const neigh = (ip: string, mac: string, permanent = true, ifname = VX): NeighInfo => ({ ifname, ip, mac, permanent });
const empty: PeerTables = { fdb: [], neighbours: [] };

/** Both tables a plan must produce for these peers, as the kernel would list them. */
function tablesOf(peers: RemotePeer[]): PeerTables {
  return {
    fdb: peers.map((p) => fdb(p.mac, p.vtep)),
    neighbours: peers.flatMap((p) => p.ips.map((ip) => neigh(ip, p.mac))),
  };
}

function show(op: PeerOp): string {
  if (op.op === 'neighDel') return `neighDel ${op.ip}`;
  if (op.op === 'neighReplace') return `neighReplace ${op.entry.ip} ${op.entry.mac}`;
  return `${op.op} ${op.entry.mac} ${op.entry.dst}`;
}

const ops = (...args: Parameters<typeof planPeers>) => planPeers(...args).ops.map(show);

describe('overlay peers: planPeers', () => {
  it('programs each remote endpoint as an FDB entry and a neighbour entry per address, FDB first', () => {
    assert.deepEqual(ops({ ifname: VX, peers: [A, B] }, empty), [
      `fdbAdd ${A.mac} 10.199.0.2`, `fdbAdd ${B.mac} 10.199.0.3`,
      `neighReplace 10.77.0.2 ${A.mac}`, `neighReplace fd00:77::2 ${A.mac}`, `neighReplace 10.77.0.3 ${B.mac}`,
    ]);
    for (const op of planPeers({ ifname: VX, peers: [A] }, empty).ops) {
      assert.equal(op.op === 'neighDel' ? op.ifname : op.entry.ifname, VX);
    }
  });

  it('does nothing when the tables are right, whatever the spelling the kernel lists them in', () => {
    assert.deepEqual(ops({ ifname: VX, peers: [A, B, C] }, tablesOf([A, B, C])), []);
    const spelled: PeerTables = {
      fdb: [fdb(A.mac.toUpperCase(), '10.199.0.2')],
      neighbours: [neigh('10.77.0.2', A.mac.toUpperCase()), neigh('fd00:0077:0:0::2', A.mac)],
    };
    assert.deepEqual(ops({ ifname: VX, peers: [{ ...A, mac: A.mac.toUpperCase() }] }, spelled), []);
  });

  it('removes what a vanished peer (a reboot, a lost host) left: its neighbours before its FDB entry', () => {
    assert.deepEqual(ops({ ifname: VX, peers: [A] }, tablesOf([A, B])), [`neighDel 10.77.0.3`, `fdbDel ${B.mac} 10.199.0.3`]);
  });

  it('a MAC that moved to another host is replaced in place; an address now at another MAC is re-pointed', () => {
    const moved = { ...B, vtep: '10.199.0.4' };
    assert.deepEqual(ops({ ifname: VX, peers: [moved] }, tablesOf([B])), [`fdbAdd ${B.mac} 10.199.0.4`]);
    const readdressed = { ...C, ips: ['10.77.0.3'] };
    assert.deepEqual(ops({ ifname: VX, peers: [readdressed] }, tablesOf([B])), [
      `fdbDel ${B.mac} 10.199.0.3`, `fdbAdd ${C.mac} 10.199.0.3`, `neighReplace 10.77.0.3 ${C.mac}`,
    ]);
  });

  it('leaves learned or resolved entries and other devices alone', () => {
    const current: PeerTables = {
      fdb: [fdb('02:00:00:00:00:99', '10.199.0.9', false), fdb('02:00:00:00:00:98', '10.199.0.9', true, 'cnmvx1')],
      neighbours: [neigh('10.77.0.99', '02:00:00:00:00:99', false), neigh('10.77.0.98', '02:00:00:00:00:98', true, 'cnmvx1')],
    };
    assert.deepEqual(ops({ ifname: VX, peers: [] }, current), []);
  });

  it('keeps the flood list equal to the remote hosts when asked, and empties it when not', () => {
    const current: PeerTables = { ...tablesOf([A]), fdb: [...tablesOf([A]).fdb, fdb(FLOOD_MAC, '10.199.0.2'), fdb(FLOOD_MAC, '10.199.0.9')] };
    assert.deepEqual(ops({ ifname: VX, peers: [A, B, C], flood: true }, current), [
      `fdbDel ${FLOOD_MAC} 10.199.0.9`,
      `fdbAdd ${B.mac} 10.199.0.3`, `fdbAdd ${C.mac} 10.199.0.3`, `fdbAdd ${FLOOD_MAC} 10.199.0.3`,
      `neighReplace 10.77.0.3 ${B.mac}`, `neighReplace 10.77.0.4 ${C.mac}`,
    ]);
    assert.deepEqual(ops({ ifname: VX, peers: [A] }, current), [`fdbDel ${FLOOD_MAC} 10.199.0.2`, `fdbDel ${FLOOD_MAC} 10.199.0.9`]);
  });

  it('never programs this host\'s own endpoints', () => {
    assert.deepEqual(ops({ ifname: VX, peers: [A, B], localVtep: '10.199.0.3' }, tablesOf([A])), []);
  });

  it('rejects bad records and resolves two claims on one MAC or address the same way on every host', () => {
    const thief = { mac: A.mac, ips: ['10.77.0.50'], vtep: '10.199.0.9' };
    const squatter = { mac: '02:42:0a:4d:00:77', ips: ['10.77.0.3'], vtep: '10.199.0.5' };
    const bad = [
      { mac: '01:00:5e:00:00:01', ips: ['10.77.0.60'], vtep: '10.199.0.2' },
      { mac: 'zz', ips: ['10.77.0.61'], vtep: '10.199.0.2' },
      { mac: '02:42:0a:4d:00:62', ips: ['10.77.0.62'], vtep: 'nowhere' },
      { mac: '02:42:0a:4d:00:63', ips: ['10.77.0.999'], vtep: '10.199.0.2' },
    ];
    const one = planPeers({ ifname: VX, peers: [thief, A, B, squatter, ...bad] }, empty);
    const other = planPeers({ ifname: VX, peers: [...bad].reverse().concat([squatter, B, A, thief]) }, empty);
    assert.deepEqual(one.ops.map(show), other.ops.map(show), 'input order does not matter');
    assert.deepEqual(one.rejected.sort(), other.rejected.sort());
    assert.equal(one.rejected.length, 6, one.rejected.join('\n'));
    const shown = one.ops.map(show);
    assert.ok(shown.includes(`fdbAdd ${A.mac} 10.199.0.2`) && !shown.includes(`fdbAdd ${A.mac} 10.199.0.9`), 'smallest VTEP keeps the MAC');
    assert.ok(shown.includes(`neighReplace 10.77.0.3 ${B.mac}`) && !shown.includes('neighReplace 10.77.0.3 02:42:0a:4d:00:77'), 'smallest VTEP keeps the address');
    assert.ok(shown.includes(`fdbAdd 02:42:0a:4d:00:63 10.199.0.2`), 'a peer keeps its MAC when one address is bad');
    assert.ok(!shown.some((s) => /10\.77\.0\.(50|6\d|999)/.test(s)));
  });
});

describe('overlay peers: reconcilePeers on the fake kernel', () => {
  it('converges from any table in one pass, with one operation per wrong entry', async () => {
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pool = Array.from({ length: 8 }, (_, i) => ({
      mac: `02:42:0a:4d:00:${(16 + i).toString(16)}`, ips: [`10.77.0.${16 + i}`, `fd00:77::${16 + i}`], vtep: `10.199.0.${2 + (i % 3)}`,
    }));
    for (let round = 0; round < 60; round++) {
      const k = new FakeKernel();
      await k.linkAdd(null, { kind: 'vxlan', name: VX, vni: 5001 });
      for (const p of pool) {
        if (rand(3) === 0) continue;
        await k.fdbAdd(null, { ifname: VX, mac: p.mac, dst: `10.199.0.${2 + rand(4)}` });
        for (const ip of p.ips) if (rand(2) === 0) await k.neighReplace(null, { ifname: VX, ip, mac: pool[rand(8)]!.mac });
        if (rand(2) === 0) await k.fdbAdd(null, { ifname: VX, mac: FLOOD_MAC, dst: `10.199.0.${2 + rand(4)}` });
      }
      const desired = { ifname: VX, peers: pool.filter(() => rand(2) === 0), flood: rand(2) === 0 };
      const before = await readPeerTables(k, null, VX);
      const { plan, failed } = await reconcilePeers(k, null, desired);
      assert.deepEqual(failed, []);
      assert.deepEqual(planPeers(desired, await readPeerTables(k, null, VX)).ops, [], `round ${round}: converged`);
      // Minimal: each operation fixes one entry that was wrong (a replace counts once).
      const after = await readPeerTables(k, null, VX);
      const key = (t: PeerTables) => new Set([...t.fdb.map((e) => `f ${e.mac} ${e.dst}`), ...t.neighbours.map((n) => `n ${n.ip} ${n.mac}`)]);
      const [b, a] = [key(before), key(after)];
      const changed = [...b].filter((x) => !a.has(x)).length + [...a].filter((x) => !b.has(x)).length;
      const replaces = plan.ops.filter((o) => o.op === 'neighReplace' || o.op === 'fdbAdd').length;
      assert.ok(plan.ops.length <= changed, `round ${round}: ${plan.ops.length} ops for ${changed} changed entries`);
      assert.ok(plan.ops.length >= changed - replaces, `round ${round}: no change without an op`);
    }
  });
});

describe('overlay MTU', () => {
  it('is the underlay MTU less 50 on IPv4, 70 on IPv6; too small an underlay is refused', () => {
    assert.equal(overlayMtu(1500, 4), 1450);
    assert.equal(overlayMtu(1500, 6), 1430);
    assert.equal(overlayMtu(9000, 4), 8950);
    assert.equal(overlayMtu(118, 4), 68);
    assert.throws(() => overlayMtu(117, 4), RangeError);
    assert.throws(() => overlayMtu(137, 6), RangeError);
  });
});
