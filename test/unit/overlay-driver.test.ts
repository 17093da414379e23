/**
 * The overlay driver on the recording kernel: its options (Docker's keys and wording), what it makes on a
 * host and when (names, owner marks, tunnel settings, MTU), peers, and its start-up side.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OverlayDriver, overlayBridgeOf, overlayHandoffOf, overlayVethOf, overlayVxlanOf } from '../../src/drivers/overlay/driver.js';
import { parseOverlayNetworkOptions, parseVxlanIdList, type OverlayNetworkOptions } from '../../src/drivers/overlay/options.js';
import { parseEndpointOptions, type EndpointOptions } from '../../src/drivers/endpoint-options.js';
import type { DriverEndpoint, DriverNetwork, DriverSandbox } from '../../src/drivers/types.js';
import { httpStatusOf } from '../../src/errors.js';
import { FakeKernel } from '../../src/kernel/fake.js';

const GROUP = 0x1234567;
const VTEP = '10.199.0.1';
const NET_ID = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';

function status(fn: () => unknown, code: number, match: RegExp): void {
  assert.throws(fn, (err: unknown) => httpStatusOf(err) === code && match.test((err as Error).message));
}

async function rejects(p: Promise<unknown>, code: number, match: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => httpStatusOf(err) === code && match.test((err as Error).message));
}

function network(options: Record<string, string> = {}, id = NET_ID): DriverNetwork<OverlayNetworkOptions> {
  return {
    id, name: `ov-${id.slice(0, 4)}`, internal: false, enableIPv4: true, enableIPv6: false,
    options: parseOverlayNetworkOptions({ 'com.docker.network.driver.overlay.vxlanid_list': '5001', ...options }),
    ipv4Pools: [{ id: 'p', family: 4, subnet: '10.77.0.0/24', gateway: '10.77.0.254' } as never], ipv6Pools: [], driverState: {},
  };
}

function endpoint(n: number): DriverEndpoint<EndpointOptions> {
  const id = `e${n}`.padEnd(64, String(n));
  return { id, options: parseEndpointOptions({}), macAddress: `02:42:0a:4d:00:0${n}`, ipv4Address: `10.77.0.${n}/24`, ifName: 'eth0', driverState: {} };
}

/** A host with an underlay link holding the VTEP address, and sandboxes. */
async function host(underlayMtu = 1500, vtep = VTEP) {
  const kernel = new FakeKernel();
  await kernel.linkAdd(null, { kind: 'dummy', name: 'eth0', mtu: underlayMtu, up: true });
  await kernel.addrAdd(null, 'eth0', `${vtep}/${vtep.includes(':') ? 64 : 24}`);
  const driver = new OverlayDriver({ kernel, vtep, ownerGroup: GROUP });
  const sandbox = async (n: number): Promise<DriverSandbox> => {
    const path = `/run/test/sb${n}`;
    await kernel.createNetns(path);
    return { id: `sb${n}`, netnsPath: path };
  };
  return { kernel, driver, sandbox };
}

describe('overlay network options', () => {
  it('vxlanid_list: one VNI from 4096 to 2^24-1, in Docker\'s words when it is no number', () => {
    assert.equal(parseVxlanIdList('4096'), 4096);
    assert.equal(parseVxlanIdList('16777215'), 16777215);
    status(() => parseVxlanIdList('4095'), 400, /vxlan id 4095 is out of range: .* from 4096 to 16777215/);
    status(() => parseVxlanIdList('16777216'), 400, /out of range/);
    status(() => parseVxlanIdList('0'), 400, /out of range/);
    status(() => parseVxlanIdList('5001,5002'), 400, /one vxlan id, 2 were passed/);
    status(() => parseVxlanIdList('abc'), 400, /^invalid vxlan id value "abc" passed$/);
    status(() => parseVxlanIdList(''), 400, /^invalid vxlan id value "" passed$/);
    status(() => parseVxlanIdList('5001,'), 400, /^invalid vxlan id value "" passed$/);
    status(() => parseVxlanIdList('-5001'), 400, /^invalid vxlan id value "-5001" passed$/);
    status(() => parseVxlanIdList(' 5001'), 400, /invalid vxlan id value/);
    status(() => parseVxlanIdList('99999999999'), 400, /invalid vxlan id value/);
  });

  it('parses its keys, refuses encryption and typos under its prefixes, ignores the rest as Docker', () => {
    const o = parseOverlayNetworkOptions({
      'com.docker.network.driver.overlay.vxlanid_list': '70000',
      'com.docker.network.driver.mtu': '1400',
      'cnm.overlay.tx_checksum_offload': 'false',
      'com.docker.network.container_iface_prefix': 'ov',
      'com.docker.network.bridge.name': 'ignored',
    });
    assert.deepEqual(o, { vni: 70000, mtu: 1400, txChecksumOffload: false, containerIfacePrefix: 'ov' });
    assert.equal(parseOverlayNetworkOptions({ 'com.docker.network.driver.mtu': '0' }).mtu, undefined);
    status(() => parseOverlayNetworkOptions({ encrypted: '' }), 400, /does not encrypt/);
    status(() => parseOverlayNetworkOptions({ encrypted: 'true' }), 400, /does not encrypt/);
    status(() => parseOverlayNetworkOptions({ 'com.docker.network.driver.overlay.vxlan_id': '5000' }), 400, /unknown option/);
    status(() => parseOverlayNetworkOptions({ 'cnm.overlay.checksum': 'false' }), 400, /unknown option/);
    status(() => parseOverlayNetworkOptions({ 'cnm.overlay.tx_checksum_offload': 'no' }), 400, /boolean/);
    status(() => parseOverlayNetworkOptions({ 'com.docker.network.driver.mtu': '67' }), 400, /between 68 and 65535/);
  });

  it('the driver: global scope, IPAM, and a cluster-wide VNI under Docker\'s key', async () => {
    const { driver } = await host();
    assert.deepEqual([driver.name, driver.scope, driver.needsIpam], ['overlay', 'global', true]);
    assert.deepEqual(driver.clusterId, { option: 'com.docker.network.driver.overlay.vxlanid_list', min: 4096, max: 16777215 });
    const other = network({ 'com.docker.network.driver.overlay.vxlanid_list': '5001' }, 'f'.repeat(64));
    status(() => driver.validateNetwork(network(), [other]), 409, /vxlan id 5001 is already used by network ov-ffff/);
    driver.validateNetwork(network(), [network({ 'com.docker.network.driver.overlay.vxlanid_list': '5002' }, 'f'.repeat(64))]);
    const noVni = { ...network(), options: parseOverlayNetworkOptions({}) };
    await rejects(driver.createNetwork(noVni), 400, /has no vxlan id/);
  });
});

describe('overlay driver on the recording kernel', () => {
  it('creating the network touches nothing; the first join makes the bridge and the VXLAN device', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    await driver.createNetwork(net);
    assert.equal(kernel.calls.filter((c) => c.method === 'linkAdd').length, 1, 'only the test\'s underlay link');
    assert.equal(await kernel.linkGet(null, overlayBridgeOf(net)), undefined);
    const sb = await sandbox(1);
    const ep = endpoint(1);
    const result = await driver.join(net, ep, sb);
    // The host end it reports is the kernel's: that name, that MAC, a port of that bridge.
    const hostLink = (await kernel.linkGet(null, overlayVethOf(ep)))!;
    const hostEnd = { name: overlayVethOf(ep), mac: hostLink.mac, bridge: hostLink.master };
    assert.equal(hostEnd.bridge, overlayBridgeOf(net));
    assert.deepEqual(result, { driverState: {}, hostInterface: hostEnd, requiresDefaultGateway: true }, 'no gateway of its own: the way out is the gateway network');
    // An internal overlay asks for none.
    const internal = { ...network({}, 'f'.repeat(64)), internal: true, options: parseOverlayNetworkOptions({ 'com.docker.network.driver.overlay.vxlanid_list': '5002' }) };
    const sb7 = await sandbox(7);
    const { hostInterface: _host7, ...joined7 } = await driver.join(internal, endpoint(7), sb7);
    assert.deepEqual(joined7, { driverState: {} }, 'internal: no way out');
    await driver.leave(internal, endpoint(7), sb7);
    const [br, vx, veth] = await Promise.all([overlayBridgeOf(net), overlayVxlanOf(net), overlayVethOf(ep)].map((n) => kernel.linkGet(null, n)));
    assert.equal(overlayBridgeOf(net), 'cnmo-a1b2c3d4e5');
    assert.equal(overlayVxlanOf(net), 'cnmx-a1b2c3d4e5');
    assert.ok(overlayBridgeOf(net).length <= 15 && overlayVethOf(ep).length <= 15);
    assert.deepEqual([br?.kind, br?.group, br?.up, br?.mtu, br?.multicastSnooping], ['bridge', GROUP, true, 1450, false]);
    assert.deepEqual([vx?.kind, vx?.group, vx?.up, vx?.mtu, vx?.master], ['vxlan', GROUP, true, 1450, overlayBridgeOf(net)]);
    assert.deepEqual(vx?.vxlan, { vni: 5001, local: VTEP, port: 4789, learning: false, arpProxy: true, ttl: 0, udpChecksum: false, txChecksumOffload: true });
    assert.deepEqual([veth?.kind, veth?.group, veth?.master, veth?.up, veth?.mtu], ['veth', GROUP, overlayBridgeOf(net), true, 1450]);
    const inner = await kernel.linkGet(sb.netnsPath, 'eth0');
    assert.deepEqual([inner?.mac, inner?.mtu, inner?.up, inner?.group], [ep.macAddress, 1450, true, GROUP]);
    assert.deepEqual((await kernel.addrList(sb.netnsPath, 'eth0')).map((a) => a.cidr), ['10.77.0.1/24']);
    // The bridge: no address, no IPv6, no forwarding, no ARP answers for the host's addresses.
    assert.deepEqual(await kernel.addrList(null, overlayBridgeOf(net)), []);
    const sysctl = (k: string) => kernel.sysctlGet(null, k.replace('BR', overlayBridgeOf(net)));
    assert.deepEqual(
      await Promise.all(['net.ipv6.conf.BR.disable_ipv6', 'net.ipv4.conf.BR.forwarding', 'net.ipv4.conf.BR.arp_ignore'].map(sysctl)),
      ['1', '0', '8'],
    );
    assert.equal(await driver.endpointIntact(net, ep, sb), true);
  });

  it('later joins reuse the devices; the last leave (read from the bridge\'s ports) removes them', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    const [sb1, sb2] = [await sandbox(1), await sandbox(2)];
    await driver.join(net, endpoint(1), sb1);
    await driver.join(net, endpoint(2), sb2);
    const made = kernel.calls.filter((c) => c.method === 'linkAdd').map((c) => (c.args[1] as { name: string }).name);
    assert.deepEqual(made, ['eth0', overlayBridgeOf(net), overlayVxlanOf(net), overlayVethOf(endpoint(1)), overlayVethOf(endpoint(2))]);
    await driver.leave(net, endpoint(1), sb1);
    assert.ok(await kernel.linkGet(null, overlayVxlanOf(net)), 'one endpoint left: the devices stay');
    await driver.leave(net, endpoint(2), sb2);
    assert.equal(await kernel.linkGet(null, overlayVxlanOf(net)), undefined);
    assert.equal(await kernel.linkGet(null, overlayBridgeOf(net)), undefined);
    await driver.leave(net, endpoint(2), sb2); // idempotent
    await driver.deleteNetwork(net);
    await driver.deleteNetwork(net);
  });

  it('MTU: the underlay\'s less 50 (70 on an IPv6 VTEP) unless the option says; 1500 when the VTEP is on no link', async () => {
    for (const [underlay, vtep, options, want] of [
      [9000, VTEP, {}, 8950],
      [9000, 'fd00:199::1', {}, 8930],
      [9000, VTEP, { 'com.docker.network.driver.mtu': '1300' }, 1300],
    ] as const) {
      const { kernel, driver, sandbox } = await host(underlay, vtep);
      const net = network(options);
      await driver.join(net, endpoint(1), await sandbox(1));
      const links = await Promise.all([overlayBridgeOf(net), overlayVxlanOf(net), overlayVethOf(endpoint(1))].map((n) => kernel.linkGet(null, n)));
      assert.deepEqual(links.map((l) => l?.mtu), [want, want, want], `${underlay} ${vtep} ${JSON.stringify(options)}`);
      assert.equal((await kernel.linkGet('/run/test/sb1', 'eth0'))?.mtu, want);
    }
    const kernel = new FakeKernel();
    await kernel.createNetns('/run/test/sb1');
    const driver = new OverlayDriver({ kernel, vtep: '192.0.2.1', ownerGroup: GROUP });
    await driver.join(network(), endpoint(1), { id: 'sb1', netnsPath: '/run/test/sb1' });
    assert.equal((await kernel.linkGet(null, overlayVxlanOf(network())))?.mtu, 1450);
  });

  it('data-path port and transmit checksum offload reach the device', async () => {
    const kernel = new FakeKernel();
    await kernel.createNetns('/run/test/sb1');
    const driver = new OverlayDriver({ kernel, vtep: VTEP, dataPathPort: 7789, ownerGroup: GROUP });
    const net = network({ 'cnm.overlay.tx_checksum_offload': 'false' });
    await driver.join(net, endpoint(1), { id: 'sb1', netnsPath: '/run/test/sb1' });
    const vx = await kernel.linkGet(null, overlayVxlanOf(net));
    assert.deepEqual([vx?.vxlan?.port, vx?.vxlan?.txChecksumOffload], [7789, false]);
  });

  it('setPeers: kept until the device exists, programmed when it appears, made exact on every call', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    const peer2 = { mac: '02:42:0a:4d:00:02', ips: ['10.77.0.2'], vtep: '10.199.0.2' };
    const peer3 = { mac: '02:42:0a:4d:00:03', ips: ['10.77.0.3/24'], vtep: '10.199.0.3' };
    const mine = { mac: '02:42:0a:4d:00:01', ips: ['10.77.0.1'], vtep: VTEP };
    await driver.setPeers(net, [peer2, peer3, mine]);
    assert.equal(await kernel.linkGet(null, overlayVxlanOf(net)), undefined, 'no device before the first join');
    await driver.join(net, endpoint(1), await sandbox(1));
    const tables = async () => ({
      fdb: (await kernel.fdbList(null, overlayVxlanOf(net))).map((f) => `${f.mac} ${f.dst}`).sort(),
      neigh: (await kernel.neighList(null, overlayVxlanOf(net))).map((n) => `${n.ip} ${n.mac}`).sort(),
    });
    assert.deepEqual(await tables(), {
      fdb: [`${peer2.mac} ${peer2.vtep}`, `${peer3.mac} ${peer3.vtep}`],
      neigh: [`10.77.0.2 ${peer2.mac}`, `10.77.0.3 ${peer3.mac}`],
    });
    await driver.setPeers(net, [peer2]);
    assert.deepEqual(await tables(), { fdb: [`${peer2.mac} ${peer2.vtep}`], neigh: [`10.77.0.2 ${peer2.mac}`] });
    const before = kernel.calls.length;
    await driver.setPeers(net, [peer2]);
    assert.deepEqual(kernel.calls.slice(before).map((c) => c.method).filter((m) => !/Get|List/.test(m)), [], 'nothing to change: no writes');
  });

  it('a link that is not the driver\'s holding a device name is refused (403) and left alone', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    await kernel.linkAdd(null, { kind: 'bridge', name: overlayBridgeOf(net) });
    await rejects(driver.join(net, endpoint(1), await sandbox(1)), 403, /exists and is not cnm's bridge/);
    assert.ok(await kernel.linkGet(null, overlayBridgeOf(net)));
    assert.equal(await kernel.linkGet(null, overlayVxlanOf(net)), undefined);
    await driver.deleteNetwork(net);
    assert.ok(await kernel.linkGet(null, overlayBridgeOf(net)), 'deleteNetwork succeeds and does not remove it either');
  });

  it('a failed first join leaves no devices behind', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    const sb = await sandbox(1);
    kernel.failNext('addrAdd');
    await assert.rejects(driver.join(net, endpoint(1), sb));
    assert.deepEqual((await kernel.linkList(null)).map((l) => l.name), ['lo', 'eth0']);
  });

  it('restoreNetwork repairs a network this host holds (bridge deleted by hand: made again, FDB exact) and makes nothing for one it does not', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    const other = network({ 'com.docker.network.driver.overlay.vxlanid_list': '5002' }, 'b'.repeat(64));
    await driver.restoreNetwork(other);
    assert.equal(await kernel.linkGet(null, overlayBridgeOf(other)), undefined);
    const peer2 = { mac: '02:42:0a:4d:00:02', ips: ['10.77.0.2'], vtep: '10.199.0.2' };
    await driver.setPeers(net, [peer2]);
    await driver.join(net, endpoint(1), await sandbox(1));
    await kernel.linkDel(null, overlayBridgeOf(net));
    await kernel.fdbDel(null, { ifname: overlayVxlanOf(net), mac: peer2.mac, dst: peer2.vtep });
    await driver.restoreNetwork(net);
    const br = await kernel.linkGet(null, overlayBridgeOf(net));
    assert.deepEqual([br?.group, br?.up], [GROUP, true]);
    assert.equal((await kernel.linkGet(null, overlayVxlanOf(net)))?.master, overlayBridgeOf(net));
    assert.deepEqual((await kernel.fdbList(null, overlayVxlanOf(net))).map((f) => f.dst), [peer2.vtep]);
    // The endpoint's veth lost its master with the bridge: not intact, so the controller rejoins it.
    assert.equal(await driver.endpointIntact(net, endpoint(1), { id: 'sb1', netnsPath: '/run/test/sb1' }), false);
  });

  it('a VXLAN device with the wrong settings is re-created; devices whose bridge has no endpoint go on setPeers', async () => {
    const { kernel, driver, sandbox } = await host();
    const net = network();
    await kernel.linkAdd(null, { kind: 'bridge', name: overlayBridgeOf(net), group: GROUP, up: true });
    await kernel.linkAdd(null, { kind: 'vxlan', name: overlayVxlanOf(net), vni: 4242, learning: true, master: overlayBridgeOf(net), group: GROUP });
    await driver.join(net, endpoint(1), await sandbox(1));
    const vx = await kernel.linkGet(null, overlayVxlanOf(net));
    assert.deepEqual([vx?.vxlan?.vni, vx?.vxlan?.learning, vx?.vxlan?.local], [5001, false, VTEP]);
    // A join cut short before the controller recorded it: the veth went as a leaked link, the devices stayed.
    await kernel.linkDel(null, overlayVethOf(endpoint(1)));
    await driver.setPeers(net, []);
    assert.equal(await kernel.linkGet(null, overlayBridgeOf(net)), undefined);
    assert.equal(await kernel.linkGet(null, overlayVxlanOf(net)), undefined);
  });

  it('ownedLinks: both devices of every network, every endpoint\'s host end and handed-over end', async () => {
    const { driver } = await host();
    assert.deepEqual(driver.ownedLinks([network()], [endpoint(1)]), ['cnmo-a1b2c3d4e5', 'cnmx-a1b2c3d4e5', overlayVethOf(endpoint(1)), overlayHandoffOf(endpoint(1))]);
  });

  it('joinForHandoff (a Docker container\'s endpoint): the devices, a veth on the bridge, the other end unconfigured for Docker, a way out asked for unless internal; leave removes all', async () => {
    const { kernel, driver } = await host();
    const net = network();
    const ep = endpoint(3);
    const result = await driver.joinForHandoff(net, ep);
    assert.deepEqual(result, { driverState: {}, srcName: overlayHandoffOf(ep), requiresDefaultGateway: true }, 'no gateway: the way out is the runtime\'s gateway network');
    assert.ok(overlayHandoffOf(ep).length <= 15);
    // An internal overlay's container asks for no way out.
    const internal = { ...network({}, 'f'.repeat(64)), internal: true, options: parseOverlayNetworkOptions({ 'com.docker.network.driver.overlay.vxlanid_list': '5002' }) };
    assert.deepEqual(await driver.joinForHandoff(internal, endpoint(7)), { driverState: {}, srcName: overlayHandoffOf(endpoint(7)) }, 'internal: no way out');
    await driver.leave(internal, endpoint(7), { id: endpoint(7).id, netnsPath: null });
    const [vx, hostEnd, given] = await Promise.all([overlayVxlanOf(net), overlayVethOf(ep), overlayHandoffOf(ep)].map((n) => kernel.linkGet(null, n)));
    assert.deepEqual([vx?.kind, vx?.master], ['vxlan', overlayBridgeOf(net)]);
    assert.deepEqual([hostEnd?.kind, hostEnd?.master, hostEnd?.up, hostEnd?.mtu, hostEnd?.group], ['veth', overlayBridgeOf(net), true, 1450, GROUP]);
    assert.deepEqual([given?.kind, given?.mac, given?.mtu, given?.up, given?.group], ['veth', ep.macAddress, 1450, false, GROUP]);
    assert.deepEqual(await kernel.addrList(null, overlayHandoffOf(ep)), [], 'Docker configures it');
    assert.equal(await driver.handoffPresent(net, ep), true);
    await driver.leave(net, ep, { id: ep.id, netnsPath: null });
    assert.equal(await driver.handoffPresent(net, ep), false);
    for (const name of [overlayHandoffOf(ep), overlayVxlanOf(net), overlayBridgeOf(net)]) assert.equal(await kernel.linkGet(null, name), undefined, name);
  });

  it('a sandbox on the host network cannot join', async () => {
    const { driver } = await host();
    await rejects(driver.join(network(), endpoint(1), { id: 'h', netnsPath: null }), 403, /host network/);
  });
});
