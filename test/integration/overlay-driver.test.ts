/**
 * The overlay driver on the real kernel: three host namespaces on an underlay switch (overlay-lab), one
 * OverlayDriver per host on that host's netlink kernel, sandboxes (namespaces) joined on each host, and
 * the peers every host should know handed to setPeers as the controller will. Two networks with the same
 * subnet on the same hosts, told apart only by their VNIs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OverlayDriver, overlayBridgeOf, overlayVxlanOf } from '../../src/drivers/overlay/driver.js';
import { parseOverlayNetworkOptions, type OverlayNetworkOptions } from '../../src/drivers/overlay/options.js';
import { planPeers } from '../../src/drivers/overlay/peers.js';
import { readPeerTables } from '../../src/drivers/overlay/peer-apply.js';
import { parseEndpointOptions, type EndpointOptions } from '../../src/drivers/endpoint-options.js';
import type { DriverEndpoint, DriverNetwork, DriverSandbox, RemotePeer } from '../../src/drivers/types.js';
import { ownerGroupFor } from '../../src/kernel/types.js';
import { type LabHost, OverlayLab } from '../helpers/overlay-lab.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { assertReachedThenBlocked, blocked, inNetnsPath, ping, pingDf, reached } from '../helpers/probe.js';

const SKIP = realKernelSkip();
const GROUP = ownerGroupFor('overlay-driver-test');

type Net = DriverNetwork<OverlayNetworkOptions>;

interface Ep {
  name: string;
  host: LabHost;
  net: Net;
  ip: string;
  mac: string;
  sandbox: DriverSandbox & { netnsPath: string };
  ep: DriverEndpoint<EndpointOptions>;
  joined: boolean;
}

function network(name: string, options: Record<string, string>): Net {
  return {
    id: randomBytes(32).toString('hex'), name, internal: false, enableIPv4: true, enableIPv6: false,
    options: parseOverlayNetworkOptions(options), ipv4Pools: [], ipv6Pools: [], driverState: {},
  };
}

describe('overlay driver across three host namespaces', { skip: SKIP }, () => {
  const lab = new OverlayLab();
  const drivers = new Map<LabHost, OverlayDriver>();
  const eps: Ep[] = [];
  // The same subnet on both: only the VNI keeps them apart.
  const netA = network('ova', { 'com.docker.network.driver.overlay.vxlanid_list': '5001' });
  const netB = network('ovb', {
    'com.docker.network.driver.overlay.vxlanid_list': '5002', 'com.docker.network.driver.mtu': '1400', 'cnm.overlay.tx_checksum_offload': 'false',
  });
  // IPv6 only: neighbour discovery answered by the VXLAN device's proxy from the programmed entries.
  const netC = { ...network('ovc', { 'com.docker.network.driver.overlay.vxlanid_list': '5003' }), enableIPv4: false, enableIPv6: true };
  let a: Ep, b: Ep, c: Ep, d: Ep, e: Ep, f: Ep, g: Ep;

  const driverOf = (host: LabHost) => drivers.get(host)!;
  const peersFor = (net: Net, host: LabHost, except: Ep[] = []): RemotePeer[] =>
    eps.filter((x) => x.net === net && x.host !== host && x.joined && !except.includes(x)).map((x) => ({ mac: x.mac, ips: [x.ip], vtep: x.host.vtep }));
  /** What the controller does on every change: each host gets the other hosts' endpoints. */
  const syncPeers = async (net: Net) => {
    for (const host of lab.hosts) await driverOf(host).setPeers(net, peersFor(net, host));
  };
  const join = async (x: Ep) => {
    await driverOf(x.host).join(x.net, x.ep, x.sandbox);
    x.joined = true;
  };
  const leave = async (x: Ep) => {
    await driverOf(x.host).leave(x.net, x.ep, x.sandbox);
    x.joined = false;
  };
  const endpoint = (name: string, host: LabHost, net: Net, ip: string, mac: string): Ep => {
    const address = ip.includes(':') ? { ipv6Address: `${ip}/64` } : { ipv4Address: `${ip}/24` };
    const x: Ep = {
      name, host, net, ip, mac, joined: false,
      sandbox: { id: name, netnsPath: lab.addSandbox() },
      ep: { id: randomBytes(32).toString('hex'), options: parseEndpointOptions({}), macAddress: mac, ...address, ifName: 'eth0', driverState: {} },
    };
    eps.push(x);
    return x;
  };
  const pingFrom = (from: Ep, ip: string) => ping(inNetnsPath(from.sandbox.netnsPath), ip);
  const cnmLinks = async (host: LabHost) => (await host.kernel.linkList(null)).map((l) => l.name).filter((n) => /^cnm[ox]-/.test(n)).sort();
  /** The host's device holds exactly the peers it should (no operation left to plan). */
  const exactPeers = async (host: LabHost, net: Net) =>
    planPeers({ ifname: overlayVxlanOf(net), peers: peersFor(net, host), localVtep: host.vtep }, await readPeerTables(host.kernel, null, overlayVxlanOf(net))).ops;

  before(async () => {
    try {
      await lab.start(3);
      for (const host of lab.hosts) drivers.set(host, new OverlayDriver({ kernel: host.kernel, vtep: host.vtep, ownerGroup: GROUP }));
      const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
      a = endpoint('a', h1, netA, '10.77.0.1', '02:42:0a:4d:00:01');
      b = endpoint('b', h2, netA, '10.77.0.2', '02:42:0a:4d:00:02');
      c = endpoint('c', h3, netA, '10.77.0.3', '02:42:0a:4d:00:03');
      d = endpoint('d', h1, netB, '10.77.0.11', '02:42:0a:4d:00:11');
      e = endpoint('e', h2, netB, '10.77.0.12', '02:42:0a:4d:00:12');
      f = endpoint('f', h1, netC, 'fd77::1', '02:42:0a:4d:00:21');
      g = endpoint('g', h3, netC, 'fd77::3', '02:42:0a:4d:00:23');
      for (const net of [netA, netB, netC]) for (const host of lab.hosts) await driverOf(host).createNetwork(net);
      assert.deepEqual(await cnmLinks(h1), [], 'creating a network makes nothing on a host');
      for (const x of eps) await join(x);
      for (const net of [netA, netB, netC]) await syncPeers(net);
    } catch (err) {
      lab.close();
      throw err;
    }
  });

  after(() => lab.close());

  it('each host has a bridge and a VXLAN device per network it has endpoints on, as specified', async () => {
    const [h1, , h3] = lab.hosts as [LabHost, LabHost, LabHost];
    assert.deepEqual(await cnmLinks(h1), [netA, netB, netC].flatMap((n) => [overlayBridgeOf(n), overlayVxlanOf(n)]).sort());
    assert.deepEqual(await cnmLinks(h3), [netA, netC].flatMap((n) => [overlayBridgeOf(n), overlayVxlanOf(n)]).sort(), 'host 3 has no endpoint on the second network');
    const vx = await h1.kernel.linkGet(null, overlayVxlanOf(netA));
    assert.deepEqual(vx?.vxlan, { vni: 5001, local: h1.vtep, port: 4789, learning: false, arpProxy: true, ttl: 0, udpChecksum: false, txChecksumOffload: true });
    assert.deepEqual([vx?.master, vx?.group, vx?.up], [overlayBridgeOf(netA), GROUP, true]);
    const br = await h1.kernel.linkGet(null, overlayBridgeOf(netA));
    assert.deepEqual([br?.kind, br?.group, br?.up], ['bridge', GROUP, true]);
    assert.deepEqual(await h1.kernel.addrList(null, overlayBridgeOf(netA)), [], 'the bridge has no address');
    assert.equal((await h1.kernel.linkGet(null, overlayVxlanOf(netB)))?.vxlan?.txChecksumOffload, false, 'the option turned offload off');
    for (const host of lab.hosts) assert.deepEqual(await exactPeers(host, netA), [], `host${host.index}: peers exact`);
  });

  it('sandboxes on three hosts ping each other by IP, both ways', async () => {
    for (const [from, to] of [[a, b], [b, a], [a, c], [c, a], [b, c], [c, b], [d, e], [e, d]] as const) {
      reached(await pingFrom(from, to.ip), `${from.name}@host${from.host.index} → ${to.name}@host${to.host.index}`);
    }
  });

  it('an IPv6 network: sandboxes on two hosts reach each other, neighbour discovery answered by the VXLAN device', async () => {
    reached(await pingFrom(f, g.ip), 'f@host1 → g@host3');
    reached(await pingFrom(g, f.ip), 'g@host3 → f@host1');
    const neighbours = await f.host.kernel.neighList(f.sandbox.netnsPath, 'eth0');
    assert.deepEqual(neighbours.filter((n) => n.ip === g.ip).map((n) => n.mac), [g.mac]);
  });

  it('a second network with the same subnet on the same hosts is isolated from the first', async () => {
    await assertReachedThenBlocked((ip) => pingFrom(a, ip), b.ip, e.ip, 'a (network A) → e (network B, other host)');
    await assertReachedThenBlocked((ip) => pingFrom(d, ip), e.ip, b.ip, 'd (network B) → b (network A, other host)');
    await assertReachedThenBlocked((ip) => pingFrom(e, ip), d.ip, a.ip, 'e (network B) → a (network A, other host)');
  });

  it('the bridge gives a sandbox no way to the host: its ARP for the host\'s own address goes unanswered', async () => {
    const h1 = lab.hosts[0]!;
    const run = inNetnsPath(a.sandbox.netnsPath);
    const underlay = `${h1.vtep.split('.').slice(0, 3).join('.')}.0/24`;
    const r = await run(['ip', 'route', 'add', underlay, 'dev', 'eth0']);
    assert.equal(r.code, 0, r.stderr);
    try {
      reached(await pingFrom(a, b.ip), 'a → b');
      blocked(await pingFrom(a, h1.vtep), `a → its host's address ${h1.vtep}`);
      const neighbours = await h1.kernel.neighList(a.sandbox.netnsPath, 'eth0');
      assert.deepEqual(neighbours.filter((n) => n.ip === b.ip).map((n) => n.mac), [b.mac], 'b\'s address was resolved (the VXLAN device answers for it)');
      assert.deepEqual(neighbours.filter((n) => n.ip === h1.vtep), [], 'nobody answered for the host\'s address');
    } finally {
      await run(['ip', 'route', 'del', underlay, 'dev', 'eth0']);
    }
  });

  it('a peer taken out of setPeers is unreachable; given back, it is reachable again', async () => {
    const h1 = lab.hosts[0]!;
    await driverOf(h1).setPeers(netA, peersFor(netA, h1, [c]));
    await assertReachedThenBlocked((ip) => pingFrom(a, ip), b.ip, c.ip, 'a → c without c in host 1\'s peers');
    await driverOf(h1).setPeers(netA, peersFor(netA, h1));
    reached(await pingFrom(a, c.ip), 'a → c with c given back');
    assert.deepEqual(await exactPeers(h1, netA), []);
  });

  it('the last leave on a host removes its bridge and VXLAN device; the first join makes them again with the peers', async () => {
    const h3 = lab.hosts[2]!;
    await leave(c);
    const ofA = (names: string[]) => names.filter((n) => n === overlayBridgeOf(netA) || n === overlayVxlanOf(netA));
    assert.deepEqual(ofA(await cnmLinks(h3)), [], 'c was the last endpoint of network A on host 3');
    await syncPeers(netA);
    reached(await pingFrom(a, b.ip), 'a → b still');
    await join(c);
    assert.deepEqual(ofA(await cnmLinks(h3)), [overlayBridgeOf(netA), overlayVxlanOf(netA)].sort());
    assert.deepEqual(await exactPeers(h3, netA), [], 'host 3 knows a and b at once, from the peers it was last given');
    await syncPeers(netA);
    reached(await pingFrom(c, a.ip), 'c → a');
    reached(await pingFrom(a, c.ip), 'a → c');
  });

  it('restoreNetwork after the bridge was deleted by hand makes it again, with the VXLAN device on it and its FDB exact', async () => {
    const h2 = lab.hosts[1]!;
    const drv = driverOf(h2);
    await h2.kernel.linkDel(null, overlayBridgeOf(netA));
    await h2.kernel.fdbDel(null, { ifname: overlayVxlanOf(netA), mac: a.mac, dst: a.host.vtep });
    await assertReachedThenBlocked((ip) => pingFrom(a, ip), c.ip, b.ip, 'a → b with host 2\'s bridge gone');
    await drv.restoreNetwork(netA);
    const br = await h2.kernel.linkGet(null, overlayBridgeOf(netA));
    assert.deepEqual([br?.kind, br?.group, br?.up], ['bridge', GROUP, true]);
    assert.equal((await h2.kernel.linkGet(null, overlayVxlanOf(netA)))?.master, overlayBridgeOf(netA));
    assert.deepEqual(await exactPeers(h2, netA), [], 'the FDB entry deleted by hand is back');
    // b's veth lost its master with the bridge: the controller sees it broken and joins it again.
    assert.equal(await drv.endpointIntact(netA, b.ep, b.sandbox), false);
    await leave(b);
    await join(b);
    assert.equal(await drv.endpointIntact(netA, b.ep, b.sandbox), true);
    reached(await pingFrom(a, b.ip), 'a → b after the restore');
    reached(await pingFrom(b, c.ip), 'b → c after the restore');
  });

  it('MTU: the underlay\'s less 50 by default (a 1450-byte DF packet crosses, 1451 does not), the option\'s when given', async () => {
    const runA = inNetnsPath(a.sandbox.netnsPath);
    assert.deepEqual(await pingDf(runA, b.ip, 1450), { outcome: 'reached' });
    assert.deepEqual(await pingDf(runA, b.ip, 1451), { outcome: 'blocked', how: 'too-big', where: 'local', mtu: 1450 });
    const runD = inNetnsPath(d.sandbox.netnsPath);
    assert.deepEqual(await pingDf(runD, e.ip, 1400), { outcome: 'reached' });
    assert.deepEqual(await pingDf(runD, e.ip, 1401), { outcome: 'blocked', how: 'too-big', where: 'local', mtu: 1400 });
    const h1 = lab.hosts[0]!;
    for (const [net, mtu] of [[netA, 1450], [netB, 1400]] as const) {
      const links = await Promise.all([overlayBridgeOf(net), overlayVxlanOf(net)].map((n) => h1.kernel.linkGet(null, n)));
      assert.deepEqual(links.map((l) => l?.mtu), [mtu, mtu], net.name);
    }
  });

  it('leaving everywhere and deleting the networks (twice) leaves no link of the driver on any host', async () => {
    for (const x of eps) await leave(x);
    for (const net of [netA, netB, netC]) {
      for (const host of lab.hosts) {
        await driverOf(host).deleteNetwork(net);
        await driverOf(host).deleteNetwork(net);
      }
    }
    for (const host of lab.hosts) {
      assert.deepEqual((await host.kernel.linkList(null)).map((l) => l.name), ['lo', 'cnmeth0'], `host${host.index}`);
    }
  });
});
