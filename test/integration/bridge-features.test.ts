/**
 * Bridge driver features on the real kernel through the API: icc=false, internal networks, masquerade
 * towards an "outside" namespace, MTU, a custom bridge name, endpoint ifname/mac options.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns } from '../helpers/netns.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { ping } from '../helpers/probe.js';

async function createNet(d: TestDaemon, body: Record<string, unknown>): Promise<string> {
  const r = await d.api('POST', '/networks/create', body);
  assert.equal(r.status, 201, r.body);
  return r.json().Id;
}

async function sandbox(d: TestDaemon, name: string, networks: Array<Record<string, unknown>>): Promise<any> {
  const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: networks });
  assert.equal(r.status, 201, r.body);
  return (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
}

/** One ping from a sandbox through `cnm exec`: true when answered, false when blocked; a probe that could not run throws. */
async function pings(d: TestDaemon, from: string, ip: string): Promise<boolean> {
  return (await ping((argv) => d.exec(from, argv), ip)).outcome === 'reached';
}

describe('bridge driver features (real kernel)', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  let outside: string;
  const outsideIp = '198.51.100.2';
  before(async () => {
    d = await startTestDaemon();
    // An "outside" host reachable from the daemon's namespace, with no route back to container
    // subnets: a container reaching it proves masquerade.
    outside = createTestNetns('cnmt-out');
    execFileSync('ip', ['-n', d.hostNs, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
    execFileSync('ip', ['-n', d.hostNs, 'addr', 'add', '198.51.100.1/30', 'dev', 'cnmt-up0']);
    execFileSync('ip', ['-n', d.hostNs, 'link', 'set', 'cnmt-up0', 'up']);
    execFileSync('ip', ['-n', outside, 'addr', 'add', `${outsideIp}/30`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
  });
  after(async () => {
    if (outside) deleteTestNetns(outside);
    await d?.cleanup();
  });

  it('masquerades outbound traffic, and not when disabled', async () => {
    await createNet(d, { Name: 'masq', IPAM: { Config: [{ Subnet: '10.50.0.0/24' }] } });
    await createNet(d, {
      Name: 'nomasq',
      IPAM: { Config: [{ Subnet: '10.51.0.0/24' }] },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    });
    await sandbox(d, 'm1', [{ Network: 'masq' }]);
    await sandbox(d, 'n1', [{ Network: 'nomasq' }]);
    assert.equal(await pings(d, 'm1', outsideIp), true, 'masqueraded sandbox reaches outside');
    assert.equal(await pings(d, 'n1', outsideIp), false, 'without masquerade there is no way back');
  });

  it('enable_icc=false isolates sandboxes on one network but keeps the gateway', async () => {
    await createNet(d, {
      Name: 'noicc',
      IPAM: { Config: [{ Subnet: '10.52.0.0/24' }] },
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    });
    await sandbox(d, 'i1', [{ Network: 'noicc' }]);
    const i2 = await sandbox(d, 'i2', [{ Network: 'noicc' }]);
    assert.equal(await pings(d, 'i1', '10.52.0.1'), true);
    assert.equal(await pings(d, 'i1', outsideIp), true, 'icc=false still allows outbound');
    assert.equal(await pings(d, 'i1', i2.Networks.noicc.IPAddress), false);
  });

  it('internal networks reach neither outside nor other networks, but talk inside', async () => {
    await createNet(d, { Name: 'inner', Internal: true, IPAM: { Config: [{ Subnet: '10.53.0.0/24' }] } });
    const t1 = await sandbox(d, 't1', [{ Network: 'inner' }]);
    const t2 = await sandbox(d, 't2', [{ Network: 'inner' }]);
    const m1 = (await d.api('GET', '/cnm/v1/sandboxes/m1')).json();
    assert.equal(await pings(d, 't1', t2.Networks.inner.IPAddress), true);
    assert.equal(await pings(d, 't1', outsideIp), false);
    assert.equal(await pings(d, 't1', m1.Networks.masq.IPAddress), false);
    assert.equal(await pings(d, 'm1', t1.Networks.inner.IPAddress), false);
    const routes = await d.exec('t1', ['ip', 'route', 'show', 'default']);
    assert.equal(routes.stdout.trim(), '', 'no default route on an internal network');
  });

  it('applies MTU, bridge name, interface name and MAC options', async () => {
    await createNet(d, {
      Name: 'tuned',
      IPAM: { Config: [{ Subnet: '10.54.0.0/24' }] },
      Options: { 'com.docker.network.driver.mtu': '1400', 'com.docker.network.bridge.name': 'cnmtuned0' },
    });
    const r = await d.api('POST', '/cnm/v1/sandboxes', {
      Name: 'x1',
      Networks: [
        {
          Network: 'tuned',
          MacAddress: '02:42:0a:36:00:99',
          DriverOpts: { 'com.docker.network.endpoint.ifname': 'data0' },
        },
      ],
    });
    assert.equal(r.status, 201, r.body);
    const link = await d.exec('x1', ['ip', '-o', 'link', 'show', 'data0']);
    assert.equal(link.code, 0, link.stderr);
    assert.match(link.stdout, /mtu 1400/);
    assert.match(link.stdout, /02:42:0a:36:00:99/);
    const bridge = await d.inHost('ip', ['-o', 'link', 'show', 'cnmtuned0']);
    assert.match(bridge.stdout, /mtu 1400/);
  });

  it('host ends of endpoints are up bridge ports without IPv6: no address, no route of theirs in the host table', async () => {
    await createNet(d, {
      Name: 'ends6',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.57.0.0/24' }, { Subnet: 'fd57::/64' }] },
      Options: { 'com.docker.network.bridge.name': 'cnmends0' },
    });
    await sandbox(d, 'e1', [{ Network: 'ends6' }]);
    await sandbox(d, 'e2', [{ Network: 'ends6' }]);
    const ports = (await d.inHost('ip', ['-o', 'link', 'show', 'master', 'cnmends0'])).stdout;
    const names = [...ports.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]!);
    assert.equal(names.length, 2, ports);
    const routes6 = (await d.inHost('ip', ['-6', 'route', 'show', 'table', 'all'])).stdout;
    for (const name of names) {
      assert.match(ports, new RegExp(`${name}[^\\n]*state UP`), `${name} is up`);
      const addrs = (await d.inHost('ip', ['-6', '-o', 'addr', 'show', 'dev', name])).stdout;
      assert.equal(addrs.trim(), '', `${name} has no IPv6 address`);
      assert.doesNotMatch(routes6, new RegExp(`dev ${name}\\b`), `no IPv6 route through ${name}`);
    }
    // The sandboxes themselves do have IPv6, and talk over it through those ports.
    const e2 = (await d.api('GET', '/cnm/v1/sandboxes/e2')).json();
    const e2Ip6 = JSON.stringify(e2).match(/fd57::[0-9a-f:]+/)?.[0];
    assert.ok(e2Ip6, JSON.stringify(e2));
    assert.equal(await pings(d, 'e1', e2Ip6), true, 'e1 reaches e2 over IPv6');
  });

  it('an IPv4-only network\'s bridge has no IPv6 (no link-local address, no routes); an IPv6 network\'s has', async () => {
    await createNet(d, { Name: 'only4', IPAM: { Config: [{ Subnet: '10.58.0.0/24' }] }, Options: { 'com.docker.network.bridge.name': 'cnmonly4' } });
    await createNet(d, {
      Name: 'both46', EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.59.0.0/24' }, { Subnet: 'fd59::/64' }] },
      Options: { 'com.docker.network.bridge.name': 'cnmboth46' },
    });
    // The first ports bring each bridge's carrier up (when the kernel would give it a link-local address).
    await sandbox(d, 'o4a', [{ Network: 'only4' }]);
    await sandbox(d, 'o4b', [{ Network: 'only4' }]);
    await sandbox(d, 'b46', [{ Network: 'both46' }]);
    const routes6 = (await d.inHost('ip', ['-6', 'route', 'show', 'table', 'all'])).stdout;
    const v6Of = async (dev: string) => (await d.inHost('ip', ['-6', '-o', 'addr', 'show', 'dev', dev])).stdout.trim();
    assert.equal((await d.inHost('cat', ['/proc/sys/net/ipv6/conf/cnmonly4/disable_ipv6'])).stdout.trim(), '1');
    assert.equal(await v6Of('cnmonly4'), '', 'no IPv6 address on the IPv4-only bridge');
    assert.doesNotMatch(routes6, /dev cnmonly4\b/, 'no IPv6 route through it');
    assert.match(await v6Of('cnmboth46'), /inet6 fd59::1\/64/);
    assert.match(await v6Of('cnmboth46'), /inet6 fe80::/);
    assert.match(routes6, /dev cnmboth46\b/);
    // IPv4 still flows between the sandboxes of the IPv4-only network.
    const o4b = (await d.api('GET', '/cnm/v1/sandboxes/o4b')).json();
    const o4bIp = JSON.stringify(o4b).match(/"IPAddress":"(10\.58\.0\.\d+)"/)?.[1];
    assert.ok(o4bIp, JSON.stringify(o4b));
    assert.equal(await pings(d, 'o4a', o4bIp), true, 'o4a reaches o4b');
  });

  it('a bridge name with a dot: the network and its IPv6 sandbox are made (sysctl keys cannot name it)', async () => {
    await createNet(d, {
      Name: 'dotted', EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.56.0.0/24' }, { Subnet: 'fd00:56::/64' }] },
      Options: { 'com.docker.network.bridge.name': 'cnmt.dot0' },
    });
    await sandbox(d, 'dot1', [{ Network: 'dotted' }]);
    assert.match((await d.inHost('ip', ['-6', '-o', 'addr', 'show', 'dev', 'cnmt.dot0'])).stdout, /fd00:56::1\/64/);
  });

  it('delivers multicast between sandboxes, with a bridge that does not snoop', async () => {
    await createNet(d, {
      Name: 'mcast',
      IPAM: { Config: [{ Subnet: '10.55.0.0/24' }] },
      Options: { 'com.docker.network.bridge.name': 'cnmmcast0' },
    });
    await sandbox(d, 'mc1', [{ Network: 'mcast' }]);
    await sandbox(d, 'mc2', [{ Network: 'mcast' }]);
    const details = JSON.parse((await d.inHost('ip', ['-d', '-j', 'link', 'show', 'cnmmcast0'])).stdout);
    assert.equal(details[0].linkinfo.info_data.mcast_snooping, 0);
    const group = '239.255.42.1';
    // The receiver joins the group and waits for one datagram; the sender repeats until it has surely started.
    const receive = d.exec('mc1', ['python3', '-c', [
      'import socket, struct, sys',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      "s.bind(('', 5353))",
      `s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4s', socket.inet_aton('${group}'), socket.inet_aton('0.0.0.0')))`,
      's.settimeout(8)',
      'data, peer = s.recvfrom(100)',
      'print(data.decode(), peer[0])',
    ].join('\n')]);
    // Stopped once the receiver has its datagram (it used to send 40 regardless: 4 s).
    const mc2Path = (await d.api('GET', '/cnm/v1/sandboxes/mc2')).json().NetnsPath as string;
    const sender = spawn('nsenter', [`--net=${mc2Path}`, 'python3', '-c', [
      'import socket, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'for _ in range(100):',
      `    s.sendto(b'hello', ('${group}', 5353))`,
      '    time.sleep(0.1)',
    ].join('\n')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sendErr = '';
    sender.stderr.on('data', (b) => (sendErr += b));
    const sent = new Promise<number | null>((r) => sender.on('close', r));
    const got = await receive;
    sender.kill('SIGKILL');
    assert.ok([0, null].includes(await sent), `sender failed: ${sendErr}`);
    assert.equal(got.code, 0, got.stderr);
    const mc2 = (await d.api('GET', '/cnm/v1/sandboxes/mc2')).json();
    assert.equal(got.stdout.trim(), `hello ${mc2.Networks.mcast.IPAddress}`);
  });

  it('rejects bad options with 400 and creates nothing', async () => {
    // Links retired by earlier deletions (cnmz…) may be destroyed meanwhile: compare everything else.
    const links = async () => (await d.inHost('ip', ['-o', 'link'])).stdout.split('\n').filter((l) => !/^\d+: cnmz/.test(l));
    const before = await links();
    const r = await d.api('POST', '/networks/create', {
      Name: 'broken',
      Options: { 'com.docker.network.driver.mtu': '12' },
    });
    assert.equal(r.status, 400, r.body);
    assert.equal((await d.api('GET', '/networks/broken')).status, 404);
    assert.deepEqual(await links(), before);
  });
});
