/**
 * Published ports over IPv6 on a real daemon and the real kernel (issue 13, part 2). Topology, all
 * throwaway: the daemon's namespace ("host") has 198.51.100.1, 2001:db8:71::1 and ::3 on a veth to a
 * neighbour namespace (198.51.100.2, 2001:db8:71::2) whose loopback is down and which routes ::1 to the
 * host. Servers listen on both families and answer with their name and the client's address.
 *
 * Every negative check runs the same probe on an allowed path first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createTestNetns, deleteTestNetns, netnsPath as netnsPathOf } from '../helpers/netns.js';
import { holdPorts, serveDualStack, startPython, tcpRefused, udpAsk, waitFor } from '../helpers/port-servers.js';
import { realKernelSkip } from '../helpers/privileges.js';
import { assertReachedThenBlocked, blocked, inNamespace, inNetnsPath, ping, reached, tcpRead, type CommandRunner } from '../helpers/probe.js';

const HOST4 = '198.51.100.1';
const NB4 = '198.51.100.2';
const HOST6 = '2001:db8:71::1';
const HOST6B = '2001:db8:71::3';
const NB6 = '2001:db8:71::2';

/** Whether this kernel has SCTP (a module that cannot load, or CONFIG_IP_SCTP unset, refuses the socket). */
function sctpMissing(): string | false {
  try {
    execFileSync('python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return false;
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n').pop();
    return `kernel feature: this kernel has no SCTP (socket(IPPROTO_SCTP): ${why}); the /proc/net/sctp/eps parsing is unit-tested`;
  }
}

describe('published ports over IPv6', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  let neighbour: string;
  let outside: CommandRunner;
  let host: CommandRunner;
  const servers: ChildProcess[] = [];
  const netns = new Map<string, string>();

  async function sandbox(name: string, body: Record<string, unknown>, status = 201): Promise<any> {
    const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, ...body });
    assert.equal(r.status, status, r.body);
    if (status === 201) netns.set(name, r.json().NetnsPath);
    return r.json();
  }

  async function serve(name: string, proto: 'tcp' | 'udp', ports: number[]): Promise<void> {
    servers.push(await serveDualStack(netns.get(name)!, name, proto, ports));
  }

  async function portMaps(): Promise<string> {
    let out = '';
    for (const map of ['ports_any', 'ports_addr', 'ports_keep', 'ports_any6', 'ports_addr6', 'ports_keep6']) {
      const r = await d.inHost('nft', ['list', 'map', 'inet', 'cnm', map]);
      assert.equal(r.code, 0, r.stderr);
      out += r.stdout;
    }
    return out;
  }

  before(async () => {
    d = await startTestDaemon(['--firewall-check-interval=3600']);
    host = inNamespace(d.hostNs);
    neighbour = createTestNetns('cnmt-nb6');
    outside = inNamespace(neighbour);
    const ip = (...args: string[]) => execFileSync('ip', args);
    ip('-n', d.hostNs, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', neighbour);
    ip('-n', d.hostNs, 'addr', 'add', `${HOST4}/29`, 'dev', 'cnmt-up0');
    for (const a of [HOST6, HOST6B]) ip('-n', d.hostNs, 'addr', 'add', `${a}/64`, 'dev', 'cnmt-up0', 'nodad');
    ip('-n', d.hostNs, 'link', 'set', 'cnmt-up0', 'up');
    ip('-n', neighbour, 'addr', 'add', `${NB4}/29`, 'dev', 'eth0');
    ip('-n', neighbour, 'addr', 'add', `${NB6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', neighbour, 'link', 'set', 'eth0', 'up');
    // The neighbour sends ::1 to the host: its loopback is down, its local route for ::1 gone.
    ip('-n', neighbour, 'link', 'set', 'lo', 'down');
    try {
      execFileSync('ip', ['-n', neighbour, '-6', 'route', 'del', 'local', '::1', 'dev', 'lo', 'table', 'local'], { stdio: 'ignore' });
    } catch {
      // Gone with lo already.
    }
    ip('-n', neighbour, '-6', 'route', 'add', '::1/128', 'via', HOST6);
    // ...and every fd00::/16 subnet (the containers' ULAs): only cnm's rules keep it out of them.
    ip('-n', neighbour, '-6', 'route', 'add', 'fd00::/16', 'via', HOST6);
    assert.match(execFileSync('ip', ['-n', neighbour, '-6', 'route', 'get', '::1'], { encoding: 'utf8' }), /via 2001:db8:71::1 dev eth0/);
    // A narrow ephemeral range: random ports land in 40040-40049.
    execFileSync('ip', ['netns', 'exec', d.hostNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=40000 40049']);
    execFileSync('ip', ['netns', 'exec', d.hostNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_reserved_ports=40000-40039']);
    for (const body of [
      { Name: 'd6', EnableIPv6: true, IPAM: { Config: [{ Subnet: '10.81.0.0/24' }, { Subnet: 'fd00:81::/64' }] } },
      { Name: 'e6', EnableIPv6: true, IPAM: { Config: [{ Subnet: '10.82.0.0/24' }, { Subnet: 'fd00:82::/64' }] } },
      { Name: 'o6', EnableIPv4: false, EnableIPv6: true, IPAM: { Config: [{ Subnet: 'fd00:83::/64' }] } },
      { Name: 'v4', IPAM: { Config: [{ Subnet: '10.84.0.0/24' }] } },
      { Name: 'i6', Internal: true, EnableIPv6: true, IPAM: { Config: [{ Subnet: '10.85.0.0/24' }, { Subnet: 'fd00:85::/64' }] } },
    ]) {
      const r = await d.api('POST', '/networks/create', body);
      assert.equal(r.status, 201, r.body);
    }
    const c = await d.cli(['sandbox', 'create', 'web', '--network', 'd6', '-p', '8080:80', '-p', '5353:5353/udp', '-p', '[::]:8110-8111:8110-8111']);
    assert.equal(c.code, 0, c.stderr);
    netns.set('web', (await d.api('GET', '/cnm/v1/sandboxes/web')).json().NetnsPath);
    await serve('web', 'tcp', [80, 8110, 8111]);
    await serve('web', 'udp', [5353]);
    await sandbox('peer', { Networks: [{ Network: 'd6' }] });
    await sandbox('other', { Networks: [{ Network: 'e6' }] });
  });

  after(async () => {
    for (const p of servers) p.kill('SIGKILL');
    if (neighbour) deleteTestNetns(neighbour);
    await d?.cleanup();
  });

  it('a port without a host address on a dual-stack network: 0.0.0.0 and :: on the same port, the client\'s address kept on both', async () => {
    assert.deepEqual((await d.api('GET', '/cnm/v1/sandboxes/web')).json().Ports['80/tcp'], [
      { HostIp: '0.0.0.0', HostPort: '8080' },
      { HostIp: '::', HostPort: '8080' },
    ]);
    assert.equal(reached(await tcpRead(outside, HOST4, 8080), 'neighbour → host IPv4:8080'), `web ${NB4}`);
    assert.equal(reached(await tcpRead(outside, HOST6, 8080), 'neighbour → host IPv6:8080'), `web ${NB6}`);
    assert.equal(reached(await tcpRead(outside, HOST6B, 8080), 'neighbour → second host IPv6:8080'), `web ${NB6}`);
    assert.equal(reached(await udpAsk(outside, HOST6, 5353), 'neighbour → host IPv6:5353/udp'), `web ${NB6}`);
    // A kept range on :: only: IPv6 reaches it, IPv4 is refused by the host.
    assert.equal(reached(await tcpRead(outside, HOST6, 8111), 'neighbour → [host]:8111'), `web ${NB6}`);
    assert.equal(await tcpRefused(outside, HOST4, 8111), true, 'the range is not published on IPv4');
    assert.match(await portMaps(), /::\/0 \. tcp \. 8110-8111 : fd00:81::\d+/);
  });

  it('hairpin over IPv6: from the host (its own address) and from sandboxes on the same and another network', async () => {
    assert.match(reached(await tcpRead(host, HOST6, 8080), 'host → own IPv6:8080'), /^web /);
    const peer = inNetnsPath(netns.get('peer')!);
    const other = inNetnsPath(netns.get('other')!);
    assert.match(reached(await tcpRead(peer, HOST6, 8080), 'same network → host IPv6'), /^web /);
    assert.match(reached(await tcpRead(peer, 'fd00:81::1', 8080), 'same network → its IPv6 gateway'), /^web /);
    assert.match(reached(await tcpRead(other, HOST6, 8080), 'other network → host IPv6'), /^web /);
    assert.match(reached(await tcpRead(other, 'fd00:82::1', 8080), 'other network → its own IPv6 gateway'), /^web /);
    assert.match(reached(await udpAsk(other, HOST6, 5353), 'other network → host IPv6:5353/udp'), /^web /);
  });

  it('a neighbour routing ::1 to the host does not reach a port published on ::, nor the container; publishing on ::1 is a 400', async () => {
    await sandbox('loc', { Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: '::', HostPort: '8301' }] } });
    await serve('loc', 'tcp', [80]);
    const nft = (ns: string, ...args: string[]) => execFileSync('nsenter', [`--net=${ns}`, 'nft', ...args], { encoding: 'utf8' });
    const box = netns.get('loc')!;
    nft(box, `table ip6 cnmtseen { chain in { type filter hook input priority 0; ip6 saddr ${NB6} tcp dport 80 counter; }; }`);
    const seen = () => Number(/counter packets (\d+)/.exec(nft(box, 'list', 'table', 'ip6', 'cnmtseen'))![1]);
    try {
      assert.equal(reached(await tcpRead(outside, HOST6, 8301), 'neighbour → [host]:8301'), `loc ${NB6}`);
      const before_ = seen();
      assert.ok(before_ > 0, 'the container counts the neighbour\'s packets');
      blocked(await tcpRead(outside, '::1', 8301), 'neighbour → [::1]:8301 routed to the host', ['timeout']);
      assert.equal(seen(), before_, 'none of them got into the container');
    } finally {
      nft(box, 'delete', 'table', 'ip6', 'cnmtseen');
    }
    const maps = await portMaps();
    const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'loc6', Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: '::1', HostPort: '8300' }] } });
    assert.equal(r.status, 400, r.body);
    assert.match(r.json().message, /^cannot publish port 80\/tcp on ::1: the kernel does not route IPv6 loopback traffic/);
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/loc6')).status, 404);
    assert.equal(await portMaps(), maps);
  });

  it('random ports: one port free on both families, the same for 0.0.0.0 and ::', async () => {
    // 40040-40047 held on an IPv6 address, 40048 on an IPv4 one: 40049 is the one port free on both
    // families (a wildcard listener would count for both: /proc does not show IPV6_V6ONLY).
    const held: Array<[string, number, boolean]> = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [HOST6B, 40040 + i, true]);
    servers.push(await holdPorts(d.hostNsPath, [...held, [HOST4, 40048, false]]));
    const sb = await sandbox('rnd', { Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{}] } });
    assert.deepEqual(sb.Ports['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: '40049' }, { HostIp: '::', HostPort: '40049' }]);
    await serve('rnd', 'tcp', [80]);
    assert.equal(reached(await tcpRead(outside, HOST6, 40049), 'neighbour → [host]:40049'), `rnd ${NB6}`);
    assert.equal(reached(await tcpRead(outside, HOST4, 40049), 'neighbour → host:40049'), `rnd ${NB4}`);
    // Nothing left on both: 409, nothing created.
    const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'rnd2', Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{}] } });
    assert.equal(r.status, 409, r.body);
    assert.match(r.json().message, /all ports are allocated/);
    // IPv4 alone still has ports: one of those held on IPv6 only.
    const v4only = await sandbox('rnd4', { Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: '0.0.0.0' }] } });
    assert.equal(v4only.Ports['80/tcp'].length, 1);
    const p4 = Number(v4only.Ports['80/tcp'][0].HostPort);
    assert.ok(p4 >= 40040 && p4 <= 40047, `IPv4-only random port ${p4}`);
  });

  it('IPv6 addresses of bridges and sandboxes skip duplicate address detection: a new sandbox\'s port answers at once', async () => {
    const sb = await sandbox('fresh', { Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostPort: '8095' }] } });
    const inSandbox = execFileSync('nsenter', [`--net=${sb.NetnsPath}`, 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'], { encoding: 'utf8' });
    assert.match(inSandbox, /inet6 fd00:81::\S+ .*nodad/, inSandbox);
    const onHost = execFileSync('ip', ['-n', d.hostNs, '-6', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
    assert.match(onHost, /inet6 fd00:81::1\/64 .*nodad/, onHost);
    assert.doesNotMatch(inSandbox + onHost, /tentative/);
    servers.push(await serveDualStack(sb.NetnsPath, 'fresh', 'tcp', [80]));
    assert.equal(reached(await tcpRead(outside, HOST6, 8095), 'neighbour → [host]:8095 right after the create'), `fresh ${NB6}`);
  });

  it('the first connection to a new network\'s first sandbox is answered at once: the bridge\'s link-local address is never tentative', async () => {
    // The server listens in a namespace of its own before the sandbox adopts it, so the first probe runs
    // right after the create, while a bridge doing duplicate address detection would still hold its
    // link-local address tentative (1-2 s after its first port comes up) and send no neighbour
    // solicitation for the forwarded packet. Fresh networks each round: each bridge gets its first port.
    // Three rounds: without the fix the first already fails (the address is tentative for a second or more).
    for (let i = 0; i < 3; i++) {
      const name = `first${i}`;
      const net = await d.api('POST', '/networks/create', { Name: name, EnableIPv6: true, IPAM: { Config: [{ Subnet: `10.86.${i}.0/24` }, { Subnet: `fd00:86:${i}::/64` }] } });
      assert.equal(net.status, 201, net.body);
      const bridge = `cnm-${net.json().Id.slice(0, 11)}`;
      const ns = createTestNetns('cnmt-fp');
      const server = await serveDualStack(netnsPathOf(ns), name, 'tcp', [80]);
      try {
        const sb = await d.api('POST', '/cnm/v1/sandboxes', { Name: name, NetnsPath: netnsPathOf(ns), Networks: [{ Network: name }], PortBindings: { '80/tcp': [{ HostPort: String(8700 + i) }] } });
        assert.equal(sb.status, 201, sb.body);
        const addrs = execFileSync('ip', ['-n', d.hostNs, '-6', '-o', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
        assert.match(addrs, /inet6 fe80::\S+ scope link/, addrs);
        assert.doesNotMatch(addrs, /tentative/, `${bridge} right after its first sandbox joined: ${addrs}`);
        assert.equal(reached(await tcpRead(outside, HOST6, 8700 + i), `round ${i}: neighbour → [host]:${8700 + i}, the first probe`), `${name} ${NB6}`);
        assert.equal(reached(await tcpRead(outside, HOST4, 8700 + i), `round ${i}: neighbour → host:${8700 + i}`), `${name} ${NB4}`);
        assert.equal((await d.api('DELETE', `/cnm/v1/sandboxes/${name}?force=1`)).status, 204);
        assert.equal((await d.api('DELETE', `/networks/${name}`)).status, 204);
      } finally {
        server.kill('SIGKILL');
        deleteTestNetns(ns);
      }
    }
  });

  it('an IPv6-only network publishes on :: only; a family the network lacks is a 400 that changes nothing', async () => {
    const sb = await sandbox('only6', { Networks: [{ Network: 'o6' }], PortBindings: { '80/tcp': [{ HostPort: '8090' }] } });
    assert.deepEqual(sb.Ports, { '80/tcp': [{ HostIp: '::', HostPort: '8090' }] });
    await serve('only6', 'tcp', [80]);
    assert.equal(reached(await tcpRead(outside, HOST6, 8090), 'neighbour → [host]:8090'), `only6 ${NB6}`);
    assert.equal(await tcpRefused(outside, HOST4, 8090), true, 'nothing on IPv4');
    const maps = await portMaps();
    const count = (await d.api('GET', '/cnm/v1/sandboxes')).json().length;
    for (const [net, hostIp] of [['o6', '0.0.0.0'], ['o6', '127.0.0.1'], ['v4', '::'], ['v4', '2001:db8:71::1']]) {
      const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'fam', Networks: [{ Network: net }], PortBindings: { '80/tcp': [{ HostIp: hostIp, HostPort: '8091' }] } });
      assert.equal(r.status, 400, r.body);
      assert.match(r.json().message, new RegExp(`cannot publish port 80/tcp on ${hostIp.replace(/\./g, '\\.')}: network ${net} has no IPv`));
    }
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes')).json().length, count);
    assert.equal(await portMaps(), maps);
  });

  it('conflicts per family: [::]:PORT taken is a 409 in Docker\'s words; the same port on IPv4 alone is free', async () => {
    const taken = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'c6', Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: '::', HostPort: '8111' }] } });
    assert.equal(taken.status, 409, taken.body);
    assert.equal(taken.json().message, 'Bind for [::]:8111 failed: port is already allocated');
    const both = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'c6', Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostPort: '8111' }] } });
    assert.equal(both.status, 409, both.body);
    assert.equal(both.json().message, 'Bind for [::]:8111 failed: port is already allocated');
    servers.push(await holdPorts(d.hostNsPath, [['2001:db8:71::3', 8501, true]]));
    const listened = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'c6', Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: HOST6B, HostPort: '8501' }] } });
    assert.equal(listened.status, 409, listened.body);
    assert.match(listened.json().message, /^Bind for \[2001:db8:71::3\]:8501\/tcp failed: address already in use/);
    const ok = await sandbox('c4', { Networks: [{ Network: 'd6' }], PortBindings: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8111' }, { HostIp: HOST6, HostPort: '8501' }] } });
    assert.deepEqual(ok.Ports['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: '8111' }, { HostIp: HOST6, HostPort: '8501' }]);
    await serve('c4', 'tcp', [80]);
    assert.equal(reached(await tcpRead(outside, HOST4, 8111), 'neighbour → host:8111 (IPv4, c4)'), `c4 ${NB4}`);
    assert.equal(reached(await tcpRead(outside, HOST6, 8111), 'neighbour → [host]:8111 (IPv6, still web)'), `web ${NB6}`);
  });

  it('docker port and docker ps show [::]:PORT as Docker does', async () => {
    const env = { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: `${d.root}/.docker` };
    const docker = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(docker(['port', 'web', '80/tcp']).trim(), '0.0.0.0:8080\n[::]:8080');
    const ps = docker(['ps', '--no-trunc', '--filter', 'name=^web$', '--format', '{{.Ports}}']).trim();
    for (const part of ['0.0.0.0:8080->80/tcp', '[::]:8080->80/tcp', '[::]:8110-8111->8110-8111/tcp']) assert.ok(ps.includes(part), `docker ps shows ${part}: ${ps}`);
    const ls = await d.cli(['sandbox', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /\[::\]:8301->80\/tcp/);
    assert.match(ls.stdout, /0\.0\.0\.0:8080->80\/tcp, \[::\]:8080->80\/tcp/);
    // docker inspect: HostConfig.PortBindings as requested, NetworkSettings.Ports as granted.
    const web = JSON.parse(docker(['inspect', 'web']))[0];
    assert.deepEqual(web.HostConfig.PortBindings, {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '5353/udp': [{ HostIp: '', HostPort: '5353' }],
      '8110/tcp': [{ HostIp: '::', HostPort: '8110' }],
      '8111/tcp': [{ HostIp: '::', HostPort: '8111' }],
    });
    assert.deepEqual(web.NetworkSettings.Ports['5353/udp'], [{ HostIp: '0.0.0.0', HostPort: '5353' }, { HostIp: '::', HostPort: '5353' }]);
    const rnd = JSON.parse(docker(['inspect', 'rnd']))[0];
    assert.deepEqual(rnd.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '' }] });
    assert.deepEqual(JSON.parse(docker(['inspect', 'peer']))[0].HostConfig.PortBindings, {});
  });

  it('survives kill -9 + restart and `nft flush ruleset` in the daemon namespace', async () => {
    await d.stop('SIGKILL');
    await d.start();
    assert.equal(reached(await tcpRead(outside, HOST6, 8080), 'after kill -9 + restart'), `web ${NB6}`);
    const maps = await portMaps();
    const r = await d.inHost('nft', ['flush', 'ruleset']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('ruleset complete', async () => (await portMaps().catch(() => '')) === maps);
    assert.equal(reached(await tcpRead(outside, HOST6, 8080), 'after the flush'), `web ${NB6}`);
    assert.equal(reached(await tcpRead(outside, HOST6, 8090), 'IPv6-only network after the flush'), `only6 ${NB6}`);
    assert.equal(reached(await tcpRead(outside, HOST6, 8301), '[::]:8301 after the flush'), `loc ${NB6}`);
  });

  it('NAT66: a sandbox\'s IPv6 connection out reaches the neighbour from the host\'s IPv6 address', async () => {
    // The neighbour would answer the container's own address too (it routes fd00::/16 to the host).
    servers.push(await serveDualStack(netnsPathOf(neighbour), 'neighbour', 'tcp', [8600]));
    const seen = reached(await tcpRead(inNetnsPath(netns.get('peer')!), NB6, 8600), 'sandbox → [neighbour]:8600');
    assert.match(seen, new RegExp(`^neighbour (${HOST6}|${HOST6B})$`), 'masqueraded to a host address');
  });

  it('IPv6 isolation: two networks do not reach each other (the same probe reaches within each); internal IPv6 stays inside', async () => {
    const v6 = async (name: string, net: string) => (await d.api('GET', `/cnm/v1/sandboxes/${name}`)).json().Networks[net].IPv6Address as string;
    const peer = inNetnsPath(netns.get('peer')!);
    const other = inNetnsPath(netns.get('other')!);
    await sandbox('other2', { Networks: [{ Network: 'e6' }] });
    await assertReachedThenBlocked((ip) => ping(peer, ip), await v6('web', 'd6'), await v6('other', 'e6'), 'd6 → e6 over IPv6');
    await assertReachedThenBlocked((ip) => ping(other, ip), await v6('other2', 'e6'), await v6('peer', 'd6'), 'e6 → d6 over IPv6');
    await sandbox('in1', { Networks: [{ Network: 'i6' }] });
    await sandbox('in2', { Networks: [{ Network: 'i6' }] });
    const in1 = inNetnsPath(netns.get('in1')!);
    await assertReachedThenBlocked((ip) => ping(in1, ip), await v6('in2', 'i6'), NB6, 'internal IPv6 → neighbour');
    await assertReachedThenBlocked((ip) => ping(outside, ip), HOST6, await v6('in1', 'i6'), 'neighbour → internal IPv6 sandbox');
    await assertReachedThenBlocked((ip) => ping(in1, ip), await v6('in2', 'i6'), await v6('peer', 'd6'), 'internal IPv6 → another network');
  });

  it('a UDP flow to a removed port does not keep reaching the old container: its conntrack entries go with the port (both families)', async () => {
    await sandbox('ua', { Networks: [{ Network: 'd6' }], PortBindings: { '5400/udp': [{ HostPort: '5400' }] } });
    await serve('ua', 'udp', [5400]);
    // One client socket per family, kept across the change: the same flow (addresses and ports) throughout.
    const client = spawn('ip', ['netns', 'exec', neighbour, 'python3', '-u', '-c', [
      'import socket, sys',
      `peers = {"4": (socket.AF_INET, ("${HOST4}", 5400)), "6": (socket.AF_INET6, ("${HOST6}", 5400))}`,
      'socks = {k: socket.socket(f, socket.SOCK_DGRAM) for k, (f, _) in peers.items()}',
      'for s in socks.values(): s.settimeout(2)',
      'print("ready")',
      'for line in sys.stdin:',
      '    k = line.strip(); s = socks[k]; s.sendto(b"?", peers[k][1])',
      '    try: print(s.recvfrom(200)[0].decode())',
      '    except socket.timeout: print("timeout")',
    ].join('\n')], { stdio: ['pipe', 'pipe', 'pipe'] });
    servers.push(client);
    const lines: string[] = [];
    let buffered = '';
    client.stdout!.on('data', (b) => {
      buffered += b;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      lines.push(...parts);
    });
    await waitFor('udp client', () => lines.includes('ready') || client.exitCode !== null);
    assert.ok(lines.includes('ready'), 'the UDP client started');
    const ask = async (family: '4' | '6'): Promise<string> => {
      const n = lines.length;
      client.stdin!.write(`${family}\n`);
      await waitFor(`answer over IPv${family}`, () => lines.length > n || client.exitCode !== null);
      return lines[n]!;
    };
    assert.equal(await ask('4'), `ua ${NB4}`);
    assert.equal(await ask('6'), `ua ${NB6}`);
    assert.equal((await d.api('DELETE', '/cnm/v1/sandboxes/ua?force=1')).status, 204);
    await sandbox('ub', { Networks: [{ Network: 'd6' }], PortBindings: { '5400/udp': [{ HostPort: '5400' }] } });
    await serve('ub', 'udp', [5400]);
    assert.equal(await ask('4'), `ub ${NB4}`, 'the same IPv4 flow reaches the new container');
    assert.equal(await ask('6'), `ub ${NB6}`, 'the same IPv6 flow reaches the new container');
  });

  it('an SCTP port a process of the host listens on is a 409; a free one is published', { skip: sctpMissing() }, async () => {
    servers.push(await startPython(d.hostNsPath, [
      'import socket, sys',
      's = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_SCTP)',
      "s.bind(('::', 8800)); s.listen(1); print('ready', flush=True); sys.stdin.read()",
    ].join('\n'), 'sctp listener'));
    const r = await d.api('POST', '/cnm/v1/sandboxes', { Name: 'sc', Networks: [{ Network: 'd6' }], PortBindings: { '8800/sctp': [{ HostPort: '8800' }] } });
    assert.equal(r.status, 409, r.body);
    assert.match(r.json().message, /^Bind for \[::\]:8800\/sctp failed: address already in use|^Bind for 0\.0\.0\.0:8800\/sctp failed: address already in use/);
    const ok = await sandbox('sc', { Networks: [{ Network: 'd6' }], PortBindings: { '8801/sctp': [{ HostPort: '8801' }] } });
    assert.equal(ok.Ports['8801/sctp'].length, 2);
  });

  it('removing the sandbox closes its IPv6 ports at once', async () => {
    reached(await tcpRead(outside, HOST6, 8090), 'open before');
    const r = await d.api('DELETE', '/cnm/v1/sandboxes/only6?force=1');
    assert.equal(r.status, 204, r.body);
    assert.equal(await tcpRefused(outside, HOST6, 8090), true, 'the host refuses [::]:8090 right after the removal');
    assert.doesNotMatch(await portMaps(), /8090/);
  });
});
