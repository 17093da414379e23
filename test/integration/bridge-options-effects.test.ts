/**
 * Every bridge option key the README lists, by its effect in the kernel (issue 11), for the keys
 * bridge-features.test.ts does not already guard (it covers enable_ip_masquerade, enable_icc,
 * --internal, driver.mtu, bridge.name, endpoint.ifname and the MacAddress field). Plus the input
 * checks that must refuse before anything is touched (issue 10 item 3), each beside a probe that
 * succeeds.
 *
 * An "outside" namespace hangs off the daemon's namespace (198.51.100.0/29: the host is .1 and .3,
 * outside is .2, with no route back to container subnets). A UDP listener there prints the source
 * address it sees: the host's address (masqueraded), host_ipv4 (SNAT) or the container's own (routed).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns } from '../helpers/netns.js';

const OUTSIDE_IP = '198.51.100.2';
const HOST_IP = '198.51.100.1';
const HOST_IP2 = '198.51.100.3';

async function createNet(d: TestDaemon, body: Record<string, unknown>): Promise<any> {
  const r = await d.api('POST', '/networks/create', body);
  assert.equal(r.status, 201, r.body);
  return (await d.api('GET', `/networks/${r.json().Id}`)).json();
}

async function sandbox(d: TestDaemon, name: string, networks: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, Networks: networks, ...extra });
  assert.equal(r.status, 201, r.body);
  return (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json();
}

/** Run in a sandbox; the command must have run (exit 0). */
async function inSandbox(d: TestDaemon, name: string, cmd: string[]): Promise<string> {
  const r = await d.exec(name, cmd);
  assert.equal(r.code, 0, `${cmd.join(' ')} in ${name}: ${r.stderr}`);
  return r.stdout;
}

async function inHost(d: TestDaemon, cmd: string, args: string[]): Promise<string> {
  const r = await d.inHost(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('bridge option keys by their effect in the kernel', () => {
  let d: TestDaemon;
  let outside: string;
  let port = 7000;

  /** The source address `OUTSIDE_IP` sees for UDP datagrams sent from `from`; '' when none arrived. */
  async function sourceSeenOutside(from: string): Promise<string> {
    const p = port++;
    const listener = spawn('ip', ['netns', 'exec', outside, 'python3', '-c', [
      'import socket',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.bind(('${OUTSIDE_IP}', ${p}))`,
      's.settimeout(60)',
      'print("ready", flush=True)',
      'try:',
      '    data, peer = s.recvfrom(100)',
      '    print(peer[0], flush=True)',
      'except socket.timeout:',
      '    print("none", flush=True)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    listener.stdout.on('data', (b) => (out += b));
    listener.stderr.on('data', (b) => (err += b));
    const exited = new Promise<number | null>((r) => listener.on('close', r));
    while (!out.includes('ready') && listener.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, /ready/, `listener did not start: ${err}`);
    // One datagram every 0.1 s until the listener has one (it used to send 30 regardless: 3 s a call).
    const path = (await d.api('GET', `/cnm/v1/sandboxes/${from}`)).json().NetnsPath as string;
    const sender = spawn('nsenter', [`--net=${path}`, 'python3', '-c', [
      'import socket, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'for _ in range(600):',
      `    s.sendto(b'x', ('${OUTSIDE_IP}', ${p}))`,
      '    time.sleep(0.1)',
    ].join('\n')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sendErr = '';
    sender.stderr.on('data', (b) => (sendErr += b));
    const sent = new Promise<number | null>((r) => sender.on('close', r));
    // A sender that fails ends the wait at once (and the listener with it) instead of after its 60 s.
    const senderFailed = sent.then((code) => code !== 0 && code !== null && listener.kill('SIGKILL'));
    const listened = await exited;
    sender.kill('SIGKILL');
    assert.ok([0, null].includes(await sent), `sender failed: ${sendErr}`);
    await senderFailed;
    assert.equal(listened, 0, `listener failed: ${err}`);
    const seen = out.split('\n')[1]!.trim();
    return seen === 'none' ? '' : seen;
  }

  before(async () => {
    d = await startTestDaemon();
    outside = createTestNetns('cnmt-out');
    execFileSync('ip', ['-n', d.hostNs, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
    execFileSync('ip', ['-n', d.hostNs, 'addr', 'add', `${HOST_IP}/29`, 'dev', 'cnmt-up0']);
    execFileSync('ip', ['-n', d.hostNs, 'addr', 'add', `${HOST_IP2}/29`, 'dev', 'cnmt-up0']);
    execFileSync('ip', ['-n', d.hostNs, 'link', 'set', 'cnmt-up0', 'up']);
    execFileSync('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE_IP}/29`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
  });
  after(async () => {
    if (outside) deleteTestNetns(outside);
    await d?.cleanup();
  });

  it('gateway_mode_ipv4: nat and nat-unprotected masquerade, routed keeps the container address, isolated has no gateway', async () => {
    await createNet(d, { Name: 'gw-nat', IPAM: { Config: [{ Subnet: '10.61.0.0/24' }] } });
    await createNet(d, { Name: 'gw-natu', IPAM: { Config: [{ Subnet: '10.62.0.0/24' }] }, Options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' } });
    await createNet(d, { Name: 'gw-routed', IPAM: { Config: [{ Subnet: '10.63.0.0/24' }] }, Options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' } });
    await createNet(d, {
      Name: 'gw-iso',
      IPAM: { Config: [{ Subnet: '10.64.0.0/24' }] },
      Options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'isolated', 'com.docker.network.bridge.name': 'cnmtiso0' },
    });
    await sandbox(d, 'g-nat', [{ Network: 'gw-nat' }]);
    await sandbox(d, 'g-natu', [{ Network: 'gw-natu' }]);
    const routed = await sandbox(d, 'g-routed', [{ Network: 'gw-routed' }]);
    await sandbox(d, 'g-iso', [{ Network: 'gw-iso' }]);
    assert.equal(await sourceSeenOutside('g-nat'), HOST_IP, 'nat: masqueraded to the host address');
    assert.equal(await sourceSeenOutside('g-natu'), HOST_IP, 'nat-unprotected: masqueraded too');
    assert.equal(await sourceSeenOutside('g-routed'), routed.Networks['gw-routed'].IPAddress, 'routed: the container address');
    // isolated: the bridge has no address and the sandbox no default route, so nothing leaves.
    assert.equal((await inHost(d, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'cnmtiso0'])).trim(), '');
    assert.equal((await inSandbox(d, 'g-iso', ['ip', '-4', 'route', 'show', 'default'])).trim(), '');
    assert.match(await inSandbox(d, 'g-nat', ['ip', '-4', 'route', 'show', 'default']), /default via 10\.61\.0\.1/);
    // The same sender as above runs and is told the network is unreachable.
    const iso = await d.exec('g-iso', ['python3', '-c', `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('${OUTSIDE_IP}', 9))`]);
    assert.equal(iso.code, 1);
    assert.match(iso.stderr, /Network is unreachable/);
  });

  it('com.docker.network.host_ipv4: outbound IPv4 leaves with that source address', async () => {
    await createNet(d, { Name: 'snat', IPAM: { Config: [{ Subnet: '10.65.0.0/24' }] }, Options: { 'com.docker.network.host_ipv4': HOST_IP2 } });
    await sandbox(d, 'h1', [{ Network: 'snat' }]);
    assert.equal(await sourceSeenOutside('h1'), HOST_IP2);
  });

  it('gateway_mode_ipv6 decides IPv6 masquerade apart from IPv4', async () => {
    const both = await createNet(d, {
      Name: 'v6-nat',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.66.0.0/24' }, { Subnet: 'fd00:66::/64' }] },
    });
    const routed6 = await createNet(d, {
      Name: 'v6-routed',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.67.0.0/24' }, { Subnet: 'fd00:67::/64' }] },
      Options: { 'com.docker.network.bridge.gateway_mode_ipv6': 'routed' },
    });
    const routed4 = await createNet(d, {
      Name: 'v4-routed',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '10.68.0.0/24' }, { Subnet: 'fd00:68::/64' }] },
      Options: { 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' },
    });
    assert.ok(both && routed6 && routed4);
    const elements = async (set: string): Promise<string> => inHost(d, 'nft', ['list', 'set', 'inet', 'cnm', set]);
    const v4 = await elements('masq_v4');
    const v6 = await elements('masq_v6');
    assert.match(v4, /10\.66\.0\.0\/24/);
    assert.match(v6, /fd00:66::\/64/);
    assert.match(v4, /10\.67\.0\.0\/24/, 'gateway_mode_ipv6=routed leaves IPv4 NAT alone');
    assert.doesNotMatch(v6, /fd00:67::/, 'gateway_mode_ipv6=routed: no IPv6 masquerade');
    assert.doesNotMatch(v4, /10\.68\.0\.0/, 'gateway_mode_ipv4=routed: no IPv4 masquerade');
    assert.match(v6, /fd00:68::\/64/, 'gateway_mode_ipv4=routed leaves IPv6 NAT alone');
  });

  it('inhibit_ipv4: no IPv4 gateway address on the bridge, no IPv4 default route in the sandbox', async () => {
    await createNet(d, {
      Name: 'inhibit',
      IPAM: { Config: [{ Subnet: '10.69.0.0/24' }] },
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true', 'com.docker.network.bridge.name': 'cnmtinh0' },
    });
    await createNet(d, { Name: 'plain', IPAM: { Config: [{ Subnet: '10.70.0.0/24' }] }, Options: { 'com.docker.network.bridge.name': 'cnmtpln0' } });
    const s = await sandbox(d, 'inh1', [{ Network: 'inhibit' }]);
    await sandbox(d, 'pln1', [{ Network: 'plain' }]);
    assert.match(s.Networks.inhibit.IPAddress, /^10\.69\.0\./, 'the sandbox still gets its address');
    assert.equal((await inHost(d, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'cnmtinh0'])).trim(), '');
    assert.match(await inHost(d, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'cnmtpln0']), /inet 10\.70\.0\.1\/24/);
    assert.equal((await inSandbox(d, 'inh1', ['ip', '-4', 'route', 'show', 'default'])).trim(), '');
    assert.match(await inSandbox(d, 'pln1', ['ip', '-4', 'route', 'show', 'default']), /default via 10\.70\.0\.1/);
  });

  it('container_iface_prefix, endpoint macaddress and sysctls reach the sandbox interface', async () => {
    await createNet(d, { Name: 'pfx', IPAM: { Config: [{ Subnet: '10.71.0.0/24' }] }, Options: { 'com.docker.network.container_iface_prefix': 'dat' } });
    await sandbox(d, 'p1', [
      {
        Network: 'pfx',
        DriverOpts: {
          'com.docker.network.endpoint.macaddress': '02:42:0a:47:00:77',
          'com.docker.network.endpoint.sysctls': 'net.ipv4.conf.IFNAME.arp_ignore=2,net.ipv4.conf.IFNAME.log_martians=1',
        },
      },
    ]);
    await createNet(d, { Name: 'pfx-ctl', IPAM: { Config: [{ Subnet: '10.75.0.0/24' }] } });
    await sandbox(d, 'p2', [{ Network: 'pfx-ctl' }]);
    const link = await inSandbox(d, 'p1', ['ip', '-o', 'link', 'show', 'dat0']);
    assert.match(link, /02:42:0a:47:00:77/);
    assert.equal((await d.exec('p1', ['ip', 'link', 'show', 'eth0'])).code !== 0, true, 'no eth0 with prefix dat');
    assert.equal((await inSandbox(d, 'p1', ['cat', '/proc/sys/net/ipv4/conf/dat0/arp_ignore'])).trim(), '2');
    assert.equal((await inSandbox(d, 'p1', ['cat', '/proc/sys/net/ipv4/conf/dat0/log_martians'])).trim(), '1');
    // The same reads on a sandbox without the options show the values are the options' doing.
    assert.notEqual((await inSandbox(d, 'p2', ['cat', '/proc/sys/net/ipv4/conf/eth0/arp_ignore'])).trim(), '2');
  });

  it('com.docker.network.enable_ipv6 as an option enables IPv6 unless the EnableIPv6 field says otherwise', async () => {
    await createNet(d, {
      Name: 'opt6',
      IPAM: { Config: [{ Subnet: '10.72.0.0/24' }, { Subnet: 'fd00:72::/64' }] },
      Options: { 'com.docker.network.enable_ipv6': 'True', 'com.docker.network.bridge.name': 'cnmtopt6' },
    });
    assert.match(await inHost(d, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'cnmtopt6']), /fd00:72::1\/64/);
    const off = await createNet(d, {
      Name: 'opt6-off',
      EnableIPv6: false,
      IPAM: { Config: [{ Subnet: '10.73.0.0/24' }] },
      Options: { 'com.docker.network.enable_ipv6': 'true' },
    });
    assert.equal(off.EnableIPv6, false, 'the field wins over the option');
    const bad = await d.api('POST', '/networks/create', { Name: 'opt6-bad', Options: { 'com.docker.network.enable_ipv6': 'yes' } });
    assert.equal(bad.status, 400, bad.body);
    assert.match(bad.json().message, /enable_ipv6" is not a valid bool/);
  });
});

describe('bad input is refused before anything is touched (real daemon)', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    const r = await d.api('POST', '/networks/create', { Name: 'n1', IPAM: { Config: [{ Subnet: '10.74.0.0/24' }] } });
    assert.equal(r.status, 201, r.body);
  });
  after(async () => {
    await d?.cleanup();
  });

  const links = async () => (await d.inHost('ip', ['-o', 'link'])).stdout.split('\n').filter((l) => l && !/^\d+: cnmz/.test(l)).map((l) => l.replace(/^\d+: /, '').split(':')[0]);
  const sandboxes = async () => (await d.api('GET', '/cnm/v1/sandboxes')).json().map((s: any) => s.Name).sort();

  it('a DNS search domain or option with a newline: 400, no sandbox; the valid ones land in resolv.conf', async () => {
    const before = { links: await links(), sandboxes: await sandboxes() };
    for (const body of [
      { DnsSearch: ['corp.example\nnameserver 6.6.6.6'] },
      { DnsOptions: ['ndots:1\nnameserver 6.6.6.6'] },
      { DnsSearch: ['corp.example nameserver'] },
      { Dns: ['6.6.6.6\nsearch evil'] },
    ]) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'dnsbad', Networks: [{ Network: 'n1' }], ...body });
      assert.equal(r.status, 400, r.body);
      assert.match(r.json().message, /control character|whitespace|not an IP address/);
    }
    assert.deepEqual({ links: await links(), sandboxes: await sandboxes() }, before);
    const cli = await d.cli(['sandbox', 'create', '--network', 'n1', '--dns-search', 'corp.example\nnameserver 6.6.6.6', 'dnsbad']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /control character/);
    assert.deepEqual(await sandboxes(), before.sandboxes);
    // The same request with clean values goes through and lands in the file.
    const ok = await d.api('POST', '/cnm/v1/sandboxes', {
      Name: 'dnsok',
      Networks: [{ Network: 'n1' }],
      DnsSearch: ['corp.example'],
      DnsOptions: ['ndots:3', 'rotate'],
    });
    assert.equal(ok.status, 201, ok.body);
    const conf = await d.exec('dnsok', ['cat', '/etc/resolv.conf']);
    assert.equal(conf.code, 0, conf.stderr);
    assert.match(conf.stdout, /^search corp\.example$/m);
    assert.match(conf.stdout, /^options ndots:3 rotate$/m);
    assert.doesNotMatch(conf.stdout, /6\.6\.6\.6/);
  });

  it('an interface name with a dot or one the kernel refuses: 400 and nothing created; a plain one works', async () => {
    const before = { links: await links(), sandboxes: await sandboxes() };
    for (const ifname of ['eth0.5', 'sixteen-chars-xx', 'a b', 'x:y', 'a/b']) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', {
        Name: 'ifbad',
        Networks: [{ Network: 'n1', DriverOpts: { 'com.docker.network.endpoint.ifname': ifname } }],
      });
      assert.equal(r.status, 400, `${ifname}: ${r.body}`);
      assert.match(r.json().message, /invalid interface name/);
    }
    const pfx = await d.api('POST', '/networks/create', { Name: 'dotpfx', Options: { 'com.docker.network.container_iface_prefix': 'e.' } });
    assert.equal(pfx.status, 400, pfx.body);
    assert.deepEqual({ links: await links(), sandboxes: await sandboxes() }, before);
    const ok = await d.api('POST', '/cnm/v1/sandboxes', {
      Name: 'ifok',
      Networks: [{ Network: 'n1', DriverOpts: { 'com.docker.network.endpoint.ifname': 'eth0-5' } }],
    });
    assert.equal(ok.status, 201, ok.body);
    assert.equal((await d.exec('ifok', ['ip', 'link', 'show', 'eth0-5'])).code, 0);
  });

  it('aliases that are not DNS names, "true\\n" booleans and published-port options: 400 and nothing created', async () => {
    const before = { links: await links(), sandboxes: await sandboxes() };
    const nets = async () => (await d.api('GET', '/networks')).json().map((n: any) => n.Name).sort();
    const netsBefore = await nets();
    for (const alias of ['web\nevil', 'two words', 'x'.repeat(64)]) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'abad', Networks: [{ Network: 'n1', Aliases: [alias] }] });
      assert.equal(r.status, 400, r.body);
    }
    for (const options of [
      { 'com.docker.network.bridge.enable_icc': 'true\n' },
      { 'com.docker.network.bridge.host_binding_ipv4': '::1' },
      { 'com.docker.network.bridge.trusted_host_interfaces': 'eth1' },
      { 'com.docker.network.driver.mtu': '1e3' },
    ]) {
      const r = await d.api('POST', '/networks/create', { Name: 'obad', Options: options });
      assert.equal(r.status, 400, `${JSON.stringify(options)}: ${r.body}`);
    }
    // default_bridge belongs to the predefined "bridge" network: a second one would be silently meaningless.
    const second = await d.api('POST', '/networks/create', { Name: 'obad', Options: { 'com.docker.network.bridge.default_bridge': 'true' } });
    assert.equal(second.status, 403, second.body);
    assert.match(second.json().message, /network bridge is already the default bridge/);
    assert.deepEqual({ links: await links(), sandboxes: await sandboxes() }, before);
    assert.deepEqual(await nets(), netsBefore);
    const ok = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'aok', Networks: [{ Network: 'n1', Aliases: ['web.v1', 'my_db'] }] });
    assert.equal(ok.status, 201, ok.body);
    const good = await d.api('POST', '/networks/create', { Name: 'ook', Options: { 'com.docker.network.bridge.enable_icc': 'True' } });
    assert.equal(good.status, 201, good.body);
  });

  it('the daemon refuses bad resolver and numeric flags at start with a clear error', async () => {
    for (const [flag, value, message] of [
      ['--dns-search', 'corp\nnameserver 6.6.6.6', /invalid --dns-search .*control character/],
      ['--dns-option', 'ndots:1 rotate', /invalid --dns-option .*whitespace/],
      ['--dns', 'resolver.example', /invalid --dns .*not an IP address/],
      ['--firewall-check-interval', '1e10', /invalid --firewall-check-interval/],
    ] as const) {
      await assert.rejects(startTestDaemon([`${flag}=${value}`]), (err: Error) => {
        assert.match(err.message, /daemon exited with [1-9]/);
        assert.match(err.message, message);
        return true;
      });
    }
  });
});
