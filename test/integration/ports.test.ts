/**
 * Published ports on a real daemon and the real kernel (issue 13, part 1). Topology, all throwaway:
 * the daemon's namespace ("host") has 198.51.100.1 and .3 on a veth to a neighbour namespace
 * (198.51.100.2) whose loopback is down and which routes 127.0.0.1 to the host — the moby#45610
 * attacker. Servers in sandboxes answer each connection (TCP) or datagram (UDP) with their name and the
 * source address they see, so every probe also tells whether the client's address was kept.
 *
 * Every negative check runs the same probe on an allowed path first (test/helpers/probe.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns } from '../helpers/netns.js';
import { tcpRefused, udpAsk, waitFor } from '../helpers/port-servers.js';
import {
  blocked,
  inNamespace,
  inNetnsPath,
  reached,
  tcpRead,
  type CommandRunner,
} from '../helpers/probe.js';

const HOST_IP = '198.51.100.1';
const HOST_IP2 = '198.51.100.3';
const NEIGHBOUR_IP = '198.51.100.2';

describe('published ports', () => {
  let d: TestDaemon;
  let neighbour: string;
  const servers: ChildProcess[] = [];
  let host: CommandRunner;
  let outside: CommandRunner;
  const netns = new Map<string, string>();

  /** Serve `proto` on `ports` inside sandbox `name`: each answer is "NAME SOURCE-ADDRESS". */
  async function serve(name: string, proto: 'tcp' | 'udp', ports: number[], path = netns.get(name)!): Promise<void> {
    const script = [
      'import socket, threading, sys',
      `name, proto = ${JSON.stringify(name)}, ${JSON.stringify(proto)}`,
      'def tcp(s):',
      '    while True:',
      '        c, peer = s.accept()',
      '        c.sendall(f"{name} {peer[0]}\\n".encode()); c.close()',
      'def udp(s):',
      '    while True:',
      '        _, peer = s.recvfrom(100)',
      '        s.sendto(f"{name} {peer[0]}".encode(), peer)',
      `for port in ${JSON.stringify(ports)}:`,
      '    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "    s.bind(('0.0.0.0', port))",
      '    if proto == "tcp": s.listen(16)',
      '    threading.Thread(target=tcp if proto == "tcp" else udp, args=(s,), daemon=True).start()',
      'print("ready", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const p = spawn('nsenter', [`--net=${path}`, 'python3', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    servers.push(p);
    let out = '';
    let err = '';
    p.stdout!.on('data', (b) => (out += b));
    p.stderr!.on('data', (b) => (err += b));
    await waitFor(`server in ${name}`, async () => out.includes('ready') || p.exitCode !== null);
    assert.match(out, /ready/, `server in ${name} did not start: ${err}`);
  }

  async function sandbox(name: string, body: Record<string, unknown>): Promise<any> {
    const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, ...body });
    assert.equal(r.status, 201, r.body);
    netns.set(name, r.json().NetnsPath);
    return r.json();
  }

  async function portMaps(): Promise<string> {
    let out = '';
    for (const map of ['ports_keep', 'ports_any', 'ports_addr']) {
      const r = await d.inHost('nft', ['list', 'map', 'inet', 'cnm', map]);
      assert.equal(r.code, 0, r.stderr);
      out += r.stdout;
    }
    return out;
  }

  before(async () => {
    d = await startTestDaemon(['--firewall-check-interval=3600']);
    host = inNamespace(d.hostNs);
    neighbour = createTestNetns('cnmt-nb');
    outside = inNamespace(neighbour);
    execFileSync('ip', ['-n', d.hostNs, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', neighbour]);
    for (const ip of [HOST_IP, HOST_IP2]) execFileSync('ip', ['-n', d.hostNs, 'addr', 'add', `${ip}/29`, 'dev', 'cnmt-up0']);
    execFileSync('ip', ['-n', d.hostNs, 'link', 'set', 'cnmt-up0', 'up']);
    execFileSync('ip', ['-n', neighbour, 'addr', 'add', `${NEIGHBOUR_IP}/29`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', neighbour, 'link', 'set', 'eth0', 'up']);
    // The neighbour sends 127.0.0.1 to the host: its loopback is down and its local routes for 127.0.0.0/8
    // are gone, so the route through the host is the only one.
    execFileSync('ip', ['-n', neighbour, 'link', 'set', 'lo', 'down']);
    for (const dst of ['127.0.0.1', '127.0.0.0/8']) {
      execFileSync('ip', ['-n', neighbour, 'route', 'del', 'local', dst, 'dev', 'lo', 'table', 'local'], { stdio: 'ignore' });
    }
    execFileSync('ip', ['-n', neighbour, 'route', 'add', '127.0.0.1/32', 'via', HOST_IP]);
    // ...and takes answers from 127.0.0.1 on eth0 (an attacker sets up its own machine as it likes).
    for (const conf of ['all', 'eth0']) execFileSync('ip', ['netns', 'exec', neighbour, 'sysctl', '-q', '-w', `net.ipv4.conf.${conf}.route_localnet=1`]);
    assert.match(execFileSync('ip', ['-n', neighbour, 'route', 'get', '127.0.0.1'], { encoding: 'utf8' }), new RegExp(`via ${HOST_IP.replace(/\./g, '\\.')} dev eth0`));
    // A narrow ephemeral range in the daemon's namespace, half of it reserved: random ports land in 40040-40049.
    execFileSync('ip', ['netns', 'exec', d.hostNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=40000 40049']);
    execFileSync('ip', ['netns', 'exec', d.hostNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_reserved_ports=40000-40039']);
    for (const body of [
      { Name: 'pa', IPAM: { Config: [{ Subnet: '10.71.0.0/24' }] } },
      { Name: 'pb', IPAM: { Config: [{ Subnet: '10.72.0.0/24' }] } },
      { Name: 'pbind', IPAM: { Config: [{ Subnet: '10.73.0.0/24' }] }, Options: { 'com.docker.network.bridge.host_binding_ipv4': HOST_IP2 } },
    ]) {
      const r = await d.api('POST', '/networks/create', body);
      assert.equal(r.status, 201, r.body);
    }
    // web: 8080→80 (moved), 8100-8102 (kept range), 5353/udp; via the CLI's -p.
    const c = await d.cli(['sandbox', 'create', 'web', '--network', 'pa', '-p', '8080:80', '-p', '8100-8102:8100-8102', '-p', '5353:5353/udp', '-p', '8200-8201:90-91']);
    assert.equal(c.code, 0, c.stderr);
    netns.set('web', (await d.api('GET', '/cnm/v1/sandboxes/web')).json().NetnsPath);
    await serve('web', 'tcp', [80, 8100, 8101, 8102, 90, 91]);
    await serve('web', 'udp', [5353]);
    await sandbox('peer', { Networks: [{ Network: 'pa' }] });
    await sandbox('other', { Networks: [{ Network: 'pb' }] });
  });

  after(async () => {
    for (const p of servers) p.kill('SIGKILL');
    if (neighbour) deleteTestNetns(neighbour);
    await d?.cleanup();
  });

  it('TCP and UDP from the daemon namespace (127.0.0.1 and its own address) and from a neighbour, which keeps its address', async () => {
    assert.match(reached(await tcpRead(host, '127.0.0.1', 8080), 'host → 127.0.0.1:8080'), /^web \S+$/);
    assert.match(reached(await tcpRead(host, HOST_IP, 8080), 'host → own address'), /^web \S+$/);
    assert.equal(reached(await tcpRead(outside, HOST_IP, 8080), 'neighbour → host:8080'), `web ${NEIGHBOUR_IP}`);
    assert.equal(reached(await udpAsk(outside, HOST_IP, 5353), 'neighbour → host:5353/udp'), `web ${NEIGHBOUR_IP}`);
    assert.match(reached(await udpAsk(host, '127.0.0.1', 5353), 'host → 127.0.0.1:5353/udp'), /^web /);
  });

  it('ranges: a kept range is one interval element, a moved range maps port to port (hash elements)', async () => {
    for (const port of [8100, 8101, 8102, 8200, 8201]) {
      reached(await tcpRead(outside, HOST_IP, port), `neighbour → ${port}`);
    }
    const maps = await portMaps();
    assert.match(maps, /0\.0\.0\.0\/0 \. tcp \. 8100-8102 : 10\.71\.0\.\d+/);
    assert.match(maps, /tcp \. 8201 : 10\.71\.0\.\d+ \. 91/);
    // The port beyond the range is not translated: the host itself refuses it.
    assert.equal(await tcpRefused(outside, HOST_IP, 8103), true);
  });

  it('hairpin: another sandbox on the same network and one on another network reach the port through host addresses', async () => {
    const peer = inNetnsPath(netns.get('peer')!);
    const other = inNetnsPath(netns.get('other')!);
    // On its own bridge the reply would go straight back to the peer: without br_netfilter (or with
    // bridge-nf-call-iptables off) nothing un-translates it there, so both settings are probed where the
    // module is loaded (the sysctl is per namespace).
    const brnf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    const setting = await d.inHost('cat', [brnf]);
    const modes = setting.code === 0 ? ['0', '1'] : [''];
    try {
      for (const mode of modes) {
        if (mode !== '') assert.equal((await d.inHost('sysctl', ['-q', '-w', `net.bridge.bridge-nf-call-iptables=${mode}`])).code, 0);
        assert.match(reached(await tcpRead(peer, '10.71.0.1', 8080), `same network → its gateway:8080 (bridge-nf ${mode})`), /^web /);
        assert.match(reached(await tcpRead(peer, HOST_IP, 8080), `same network → host address (bridge-nf ${mode})`), /^web /);
      }
    } finally {
      if (setting.code === 0) await d.inHost('sysctl', ['-q', '-w', `net.bridge.bridge-nf-call-iptables=${setting.stdout.trim()}`]);
    }
    assert.match(reached(await tcpRead(other, HOST_IP, 8080), 'other network → host address'), /^web /);
    assert.equal(reached(await udpAsk(other, HOST_IP, 5353), 'other network → host:5353/udp').split(' ')[0], 'web');
  });

  it('a port published on 127.0.0.1 is closed to a neighbour that routes 127.0.0.1 to the host', async () => {
    // The same container port also on 0.0.0.0:8301: the allowed path of the same probe.
    await sandbox('local', {
      Networks: [{ Network: 'pa' }],
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8300' }, { HostPort: '8301' }] },
    });
    await serve('local', 'tcp', [80]);
    reached(await tcpRead(host, '127.0.0.1', 8300), 'the host reaches its 127.0.0.1:8300');
    // Counters in tables of the test's own: packets from the neighbour arriving at the host for
    // 127.0.0.1:8300, and packets from the neighbour arriving in the container (a reply could be lost on
    // the way back while the packet still got in: moby#45610 is about getting in).
    const nft = (ns: string[], ...args: string[]) => execFileSync('nsenter', [...ns, 'nft', ...args], { encoding: 'utf8' });
    const hostNs = [`--net=${d.hostNsPath}`];
    const boxNs = [`--net=${netns.get('local')}`];
    nft(hostNs, 'table ip cnmtcount { chain pre { type filter hook prerouting priority -400; iifname "cnmt-up0" ip daddr 127.0.0.1 tcp dport 8300 counter; }; }');
    nft(boxNs, `table ip cnmtseen { chain in { type filter hook input priority 0; ip saddr ${NEIGHBOUR_IP} tcp dport 80 counter; }; }`);
    const count = (ns: string[], table: string) => Number(/counter packets (\d+)/.exec(nft(ns, 'list', 'table', 'ip', table))![1]);
    try {
      assert.equal(reached(await tcpRead(outside, HOST_IP, 8301), 'neighbour → host:8301'), `local ${NEIGHBOUR_IP}`);
      const inBox = count(boxNs, 'cnmtseen');
      assert.ok(inBox > 0, 'the container counts the neighbour\'s packets');
      blocked(await tcpRead(outside, '127.0.0.1', 8300), 'neighbour → 127.0.0.1:8300', ['timeout']);
      assert.ok(count(hostNs, 'cnmtcount') > 0, 'the neighbour\'s packets to 127.0.0.1:8300 reached the host');
      assert.equal(count(boxNs, 'cnmtseen'), inBox, 'none of them got into the container');
    } finally {
      nft(hostNs, 'delete', 'table', 'ip', 'cnmtcount');
      nft(boxNs, 'delete', 'table', 'ip', 'cnmtseen');
    }
  });

  it('host_binding_ipv4: the network\'s ports are on that address only', async () => {
    await sandbox('bound', { Networks: [{ Network: 'pbind' }], PortBindings: { '80/tcp': [{ HostPort: '8400' }] } });
    await serve('bound', 'tcp', [80]);
    assert.deepEqual((await d.api('GET', '/cnm/v1/sandboxes/bound')).json().Ports, { '80/tcp': [{ HostIp: HOST_IP2, HostPort: '8400' }] });
    assert.equal(reached(await tcpRead(outside, HOST_IP2, 8400), 'neighbour → host_binding_ipv4:8400'), `bound ${NEIGHBOUR_IP}`);
    assert.equal(await tcpRefused(outside, HOST_IP, 8400), true, 'the other host address does not translate 8400');
  });

  it('a port published on an address the host does not have never captures traffic to it that passes through', async () => {
    // The neighbour's own address, published on the host: traffic from a sandbox to it goes on to the neighbour.
    await sandbox('foreign', { Networks: [{ Network: 'pa' }], PortBindings: { '80/tcp': [{ HostIp: NEIGHBOUR_IP, HostPort: '8700' }] } });
    await serve('foreign', 'tcp', [80]);
    const neighbourServer = spawn('ip', ['netns', 'exec', neighbour, 'python3', '-c', [
      'import socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(('${NEIGHBOUR_IP}', 8700)); s.listen(4); print('ready', flush=True)`,
      'while True:',
      '    c, peer = s.accept(); c.sendall(f"neighbour {peer[0]}\\n".encode()); c.close()',
    ].join('\n')], { stdio: ['pipe', 'pipe', 'pipe'] });
    servers.push(neighbourServer);
    let out = '';
    neighbourServer.stdout!.on('data', (b) => (out += b));
    await waitFor('neighbour server', async () => out.includes('ready') || neighbourServer.exitCode !== null);
    const peer = inNetnsPath(netns.get('peer')!);
    assert.match(reached(await tcpRead(peer, NEIGHBOUR_IP, 8700), 'sandbox → neighbour:8700'), /^neighbour /);
  });

  it('random host ports come from ip_local_port_range minus ip_local_reserved_ports', async () => {
    const sb = await sandbox('rnd', { Networks: [{ Network: 'pa' }], PortBindings: { '80/tcp': [{}], '81/udp': [{ HostIp: '', HostPort: '' }] } });
    await serve('rnd', 'tcp', [80]);
    const tcp = Number(sb.Ports['80/tcp'][0].HostPort);
    const udp = Number(sb.Ports['81/udp'][0].HostPort);
    for (const p of [tcp, udp]) assert.ok(p >= 40040 && p <= 40049, `host port ${p} outside 40040-40049`);
    assert.equal(reached(await tcpRead(outside, HOST_IP, tcp), `neighbour → random port ${tcp}`), `rnd ${NEIGHBOUR_IP}`);
  });

  it('a host port already published or listened on: 409, and nothing is created', async () => {
    const listener = spawn('nsenter', [`--net=${d.hostNsPath}`, 'python3', '-c',
      "import socket, sys\ns = socket.socket(); s.bind(('0.0.0.0', 8500)); s.listen(1); print('ready', flush=True); sys.stdin.read()"], { stdio: ['pipe', 'pipe', 'pipe'] });
    servers.push(listener);
    let out = '';
    listener.stdout!.on('data', (b) => (out += b));
    await waitFor('host listener', async () => out.includes('ready') || listener.exitCode !== null);
    const before_ = { list: (await d.api('GET', '/cnm/v1/sandboxes')).json().length, maps: await portMaps(), links: (await d.inHost('ip', ['-o', 'link'])).stdout.split('\n').length };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ '80/tcp': [{ HostPort: '8080' }] }, /^Bind for 0\.0\.0\.0:8080 failed: port is already allocated$/],
      [{ '81/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] }, /port is already allocated/],
      [{ '80/tcp': [{ HostPort: '8500' }] }, /Bind for 0\.0\.0\.0:8500\/tcp failed: address already in use/],
      // One good port beside a taken one: still nothing.
      [{ '80/tcp': [{ HostPort: '8600' }], '81/tcp': [{ HostPort: '8101' }] }, /port is already allocated/],
    ];
    for (const [bindings, message] of cases) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'clash', Networks: [{ Network: 'pa' }], PortBindings: bindings });
      assert.equal(r.status, 409, r.body);
      assert.match(r.json().message, message);
    }
    const bad = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'clash', Networks: [{ Network: 'pa' }], PortBindings: { '80/icmp': [{}] } });
    assert.equal(bad.status, 400, bad.body);
    assert.deepEqual(
      { list: (await d.api('GET', '/cnm/v1/sandboxes')).json().length, maps: await portMaps(), links: (await d.inHost('ip', ['-o', 'link'])).stdout.split('\n').length },
      before_,
    );
    // The same request on free ports works.
    const ok = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'clash', Networks: [{ Network: 'pa' }], PortBindings: { '80/tcp': [{ HostPort: '8600' }], '81/tcp': [{ HostPort: '8601' }] } });
    assert.equal(ok.status, 201, ok.body);
  });

  it('docker ps, docker port and docker inspect show the ports; cnm sandbox ls too', async () => {
    const env = { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: `${d.root}/.docker` };
    const docker = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8', env, timeout: 30_000 });
    const ps = docker(['ps', '--no-trunc', '--filter', 'name=^web$', '--format', '{{.Ports}}']).trim();
    for (const part of ['0.0.0.0:8080->80/tcp', '0.0.0.0:8100-8102->8100-8102/tcp', '0.0.0.0:8200->90/tcp', '0.0.0.0:8201->91/tcp', '0.0.0.0:5353->5353/udp']) {
      assert.ok(ps.includes(part), `docker ps shows ${part}: ${ps}`);
    }
    assert.equal(docker(['port', 'web', '80/tcp']).trim(), '0.0.0.0:8080');
    assert.match(docker(['port', 'local']), /^80\/tcp -> 127\.0\.0\.1:8300$/m);
    const inspect = JSON.parse(docker(['inspect', 'web']))[0];
    assert.deepEqual(inspect.NetworkSettings.Ports['5353/udp'], [{ HostIp: '0.0.0.0', HostPort: '5353' }]);
    const ls = await d.cli(['sandbox', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /PORTS/);
    assert.match(ls.stdout, /127\.0\.0\.1:8300->80\/tcp/);
  });

  it('survives kill -9 + restart and `nft flush ruleset` in the daemon namespace', async () => {
    await d.stop('SIGKILL');
    await d.start();
    assert.equal(reached(await tcpRead(outside, HOST_IP, 8080), 'after kill -9 + restart'), `web ${NEIGHBOUR_IP}`);
    const maps = await portMaps();
    const r = await d.inHost('nft', ['flush', 'ruleset']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('port maps restored', async () => {
      const l = await d.inHost('nft', ['list', 'map', 'inet', 'cnm', 'ports_any']);
      return l.code === 0 && /8080/.test(l.stdout);
    });
    await waitFor('ruleset complete', async () => (await portMaps().catch(() => '')) === maps);
    assert.equal(reached(await tcpRead(outside, HOST_IP, 8080), 'after the flush'), `web ${NEIGHBOUR_IP}`);
    reached(await tcpRead(host, '127.0.0.1', 8300), 'localhost port after the flush');
  });

  it('removing the sandbox closes its ports at once', async () => {
    reached(await tcpRead(outside, HOST_IP, 8080), 'open before');
    const r = await d.api('DELETE', '/cnm/v1/sandboxes/web?force=1');
    assert.equal(r.status, 204, r.body);
    assert.equal(await tcpRefused(outside, HOST_IP, 8080), true, 'the host refuses 8080 right after the removal');
    assert.doesNotMatch(await portMaps(), /8080|8100/);
    // Free again: another sandbox may take it.
    await sandbox('web2', { Networks: [{ Network: 'pb' }], PortBindings: { '80/tcp': [{ HostPort: '8080' }] } });
    await serve('web2', 'tcp', [80]);
    assert.equal(reached(await tcpRead(outside, HOST_IP, 8080), 'the port, published again'), `web2 ${NEIGHBOUR_IP}`);
  });
});
