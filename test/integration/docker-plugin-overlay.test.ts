/**
 * Docker containers on two hosts on one cnm overlay, no swarm: two real dockerds (Debian docker.io), each
 * in its own throwaway namespace ("host") with its own data root, exec root and socket, the two
 * namespaces on an underlay bridge (10.199.0.1 and .2); a cnm daemon beside each dockerd with
 * --cluster-store on one real etcd member and --docker-plugin (a unique plugin name per host: both
 * dockerds look in the one /run/docker/plugins). `docker network create -d PLUGIN -o cnm.driver=overlay
 * -o cnm.name=dov` on both hosts ends up as ONE cnm global overlay; containers on the two hosts reach
 * each other over VXLAN, a cnm sandbox on host 2 is reached from host 1's container, and an address
 * taken on one host is refused on the other (cluster-wide claims). The way out: the plugin's Join asks
 * Docker for no gateway service to be disabled on a non-internal overlay, so dockerd connects the
 * container to its own docker_gwbridge (as for swarm overlays) — an "outside" namespace routed from host
 * 1 sees the container masqueraded to host 1's address, and `-p` is published there by dockerd.
 * The dockerds run with their iptables rules (masquerade and -p are theirs) but `--ip-forward=false`:
 * a dockerd that turns ip_forward on itself also sets iptables' FORWARD policy to DROP, which drops
 * the forwarded (and, with br_netfilter, bridged) traffic of cnm's networks in the same namespace;
 * cnm's daemon turns forwarding on itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { BENCH_IMAGE, dockerAvailable, startDockerd, type Dockerd } from '../../bench/lib/dockerd.js';
import { dockerCli } from '../helpers/docker-cli.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { serveDualStack } from '../helpers/port-servers.js';
import { blocked, dig, inNamespace, inNetnsPath, ping, ProbeCouldNotRun, reached, tcpRead, type CommandRunner, type ProbeResult } from '../helpers/probe.js';

const PLUGIN_DIR = '/run/docker/plugins';
const TIMEOUT = 600_000;
const DOCKER_CONFIG = `/tmp/cnmt-docker-config-ov-${process.pid}`;

const { docker, dockerOk } = dockerCli(DOCKER_CONFIG);
/** The "internet": one hop from host 1, with no route back to any container subnet (only masqueraded traffic is answered). */
const OUTSIDE = '198.51.100.2';
const HOST_UPLINK = '198.51.100.1';

/** GET http://ADDRESS:PORT/ with curl (3 s): the body, a timeout, or (refused, other errors) could not run. */
async function httpGet(run: CommandRunner, address: string, port: number): Promise<ProbeResult> {
  const r = await run(['curl', '-sS', '--max-time', '3', `http://${address}:${port}/`]);
  if (r.code === 0) return { outcome: 'reached', output: r.stdout.trim() };
  if (r.code === 28) return { outcome: 'blocked', how: 'timeout' };
  throw new ProbeCouldNotRun(`http ${address}:${port}`, r);
}

/** The A records Docker's embedded DNS gives NAME, asked from inside a container's namespace. */
async function dockerDnsA(run: CommandRunner, name: string): Promise<string[]> {
  const r = await dig(run, '127.0.0.11', [name, 'A']);
  if (r.outcome === 'blocked') return [];
  return [...r.output.matchAll(/\sIN\s+A\s+(\S+)/g)].map((m) => m[1]!);
}

/** Pings until one is answered (the peers reach the other host through the etcd watch: convergence, not speed). */
async function pingUntilReached(run: CommandRunner, address: string, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await ping(run, address);
    if (r.outcome === 'reached' || Date.now() > deadline) return void reached(r, what);
  }
}

const dockerMissing = await dockerAvailable();
const skip =
  realKernelSkip() || realClientSkip('docker') || (dockerMissing ? `real client: ${dockerMissing}` : false) ||
  (onPath('etcd') ? false : realClientSkip('etcd'));

describe('Docker containers on two hosts on one cnm overlay (two real dockerds, one etcd)', { skip }, () => {
  let etcd: EtcdCluster | undefined;
  let underlay: string | undefined;
  let outside: string | undefined;
  let server: ChildProcess | undefined;
  const dockerds: Dockerd[] = [];
  const daemons: TestDaemon[] = [];
  const tag = randomBytes(3).toString('hex');
  const plugins = [`cnmt-${tag}-1`, `cnmt-${tag}-2`];
  const vtep = (i: number) => `10.199.0.${i + 1}`;

  before(async () => {
    etcd = await startEtcdCluster(1);
    for (let i = 0; i < 2; i++) dockerds.push(await startDockerd(['--bridge', 'none', '--ip6tables=false', '--ip-forward=false']));
    underlay = createTestNetns('cnmt-ul');
    execFileSync('ip', ['-n', underlay, 'link', 'add', 'cnmul0', 'type', 'bridge']);
    execFileSync('ip', ['-n', underlay, 'link', 'set', 'cnmul0', 'up']);
    const store = `unix://${etcd.endpoints.map((e) => e.slice('unix:'.length)).join(',')}`;
    for (const [i, d] of dockerds.entries()) {
      const ns = basename(d.hostNetnsPath);
      execFileSync('ip', ['-n', underlay, 'link', 'add', `cnmul${i + 1}`, 'type', 'veth', 'peer', 'name', 'cnmeth0', 'netns', ns]);
      execFileSync('ip', ['-n', underlay, 'link', 'set', `cnmul${i + 1}`, 'master', 'cnmul0', 'up']);
      execFileSync('ip', ['-n', ns, 'addr', 'add', `${vtep(i)}/24`, 'dev', 'cnmeth0']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'cnmeth0', 'up']);
      daemons.push(await startTestDaemon(
        ['--docker-plugin', plugins[i]!, '--cluster-store', store, '--advertise-addr', vtep(i), '--host-ttl', '5'],
        { hostNs: ns },
      ));
    }
    const host1 = basename(dockerds[0]!.hostNetnsPath);
    outside = createTestNetns('cnmt-out');
    execFileSync('ip', ['-n', host1, 'link', 'add', 'cnmt-up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
    execFileSync('ip', ['-n', host1, 'addr', 'add', `${HOST_UPLINK}/30`, 'dev', 'cnmt-up0']);
    execFileSync('ip', ['-n', host1, 'link', 'set', 'cnmt-up0', 'up']);
    execFileSync('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE}/30`, 'dev', 'eth0']);
    execFileSync('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
    server = await serveDualStack(netnsPath(outside), 'outside', 'tcp', [8080]);
  });

  after(async () => {
    for (const d of dockerds) await docker(d.socket, ['rm', '-f', 'ca', 'cb', 'cb2', 'web', 'ci', 'cz']).catch(() => undefined);
    server?.kill();
    if (outside) deleteTestNetns(outside);
    for (const d of daemons) await d.cleanup().catch(() => undefined);
    for (const p of plugins) await rm(`${PLUGIN_DIR}/${p}.sock`, { force: true });
    for (const d of dockerds) await d.stop().catch(() => undefined);
    if (underlay) deleteTestNetns(underlay);
    await etcd?.close();
    await rm(DOCKER_CONFIG, { recursive: true, force: true });
  });

  it('one overlay from two dockerds: containers on both hosts and a cnm sandbox reach each other, addresses distinct', { timeout: TIMEOUT }, async () => {
    const [d1, d2] = dockerds as [Dockerd, Dockerd];
    const [c1, c2] = daemons as [TestDaemon, TestDaemon];
    // Without -o cnm.name the other hosts could not find it: refused, nothing made.
    const unnamed = await docker(d1.socket, ['network', 'create', '-d', plugins[0]!, '-o', 'cnm.driver=overlay', '--subnet', '10.92.1.0/24', 'unnamed']);
    assert.notEqual(unnamed.code, 0);
    assert.match(unnamed.stderr, /NetworkDriver\.CreateNetwork: .*-o cnm\.name=NAME/);

    // Docker's IPAM on each host hands out from its own --ip-range; cnm's sandboxes take the upper half.
    const id1 = await dockerOk(d1.socket, ['network', 'create', '-d', plugins[0]!, '-o', 'cnm.driver=overlay', '-o', 'cnm.name=dov', '--subnet', '10.92.0.0/24', '--ip-range', '10.92.0.0/26', 'dov']);
    const id2 = await dockerOk(d2.socket, ['network', 'create', '-d', plugins[1]!, '-o', 'cnm.driver=overlay', '-o', 'cnm.name=dov', '--subnet', '10.92.0.0/24', '--ip-range', '10.92.0.64/26', 'dov']);
    assert.notEqual(id1, id2, 'each dockerd has its own network ID');
    // One cnm network on both hosts: the first dockerd's ID, overlay, global.
    for (const c of [c1, c2]) {
      const r = await c.api('GET', '/networks/dov');
      assert.equal(r.status, 200, r.body);
      const net = r.json();
      assert.deepEqual([net.Id, net.Driver, net.Scope], [id1, 'overlay', 'global']);
    }
    // A different subnet under the same name is not the same network: refused.
    const other = await docker(d2.socket, ['network', 'create', '-d', plugins[1]!, '-o', 'cnm.driver=overlay', '-o', 'cnm.name=dov', '--subnet', '10.93.0.0/24', 'dov-other']);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /NetworkDriver\.CreateNetwork: .*dov.*10\.92\.0\.0\/24/);

    await dockerOk(d1.socket, ['run', '-d', '--name', 'ca', '--network', 'dov', BENCH_IMAGE, 'sleep', '600']);
    await dockerOk(d2.socket, ['run', '-d', '--name', 'cb', '--network', 'dov', BENCH_IMAGE, 'sleep', '600']);
    const a = JSON.parse(await dockerOk(d1.socket, ['inspect', 'ca']))[0];
    const b = JSON.parse(await dockerOk(d2.socket, ['inspect', 'cb']))[0];
    const aAddr: string = a.NetworkSettings.Networks.dov.IPAddress;
    const bAddr: string = b.NetworkSettings.Networks.dov.IPAddress;
    const sb = await c2.api('POST', '/cnm/v1/sandboxes', { Name: 's2', Networks: [{ Network: 'dov' }] });
    assert.equal(sb.status, 201, sb.body);
    const sAddr: string = sb.json().Networks.dov.IPAddress;
    assert.equal(new Set([aAddr, bAddr, sAddr]).size, 3, `distinct addresses: ${aAddr} ${bAddr} ${sAddr}`);
    for (const addr of [aAddr, bAddr, sAddr]) assert.match(addr, /^10\.92\.0\.\d+$/);

    // The container's interface is cnm's overlay veth (the overlay's MTU), with Docker's address.
    const aNs = inNetnsPath(`/proc/${a.State.Pid}/ns/net`);
    const bNs = inNetnsPath(`/proc/${b.State.Pid}/ns/net`);
    const link = await aNs(['ip', '-d', '-o', 'link', 'show', 'dev', 'eth0']);
    assert.match(link.stdout, /mtu 1450 .*veth/);
    await pingUntilReached(aNs, bAddr, 'container a (host 1) → container b (host 2)');
    await pingUntilReached(bNs, aAddr, 'container b (host 2) → container a (host 1)');
    await pingUntilReached(aNs, sAddr, 'container a (host 1) → cnm sandbox s2 (host 2)');
    reached(await ping(inNetnsPath(sb.json().NetnsPath), aAddr), 'cnm sandbox s2 (host 2) → container a (host 1)');

    // An address taken on host 1 is refused on host 2 (claimed cluster-wide), as Docker prints it.
    const clash = await docker(d2.socket, ['run', '-d', '--name', 'cb2', '--network', 'dov', '--ip', aAddr, BENCH_IMAGE, 'sleep', '600']);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /NetworkDriver\.CreateEndpoint: Address already in use/);
    await docker(d2.socket, ['rm', '-f', 'cb2']);
  });

  it('a way out as on swarm overlays: docker_gwbridge masquerades to the host\'s address and publishes -p; internal overlays get none; names stay per overlay', { timeout: TIMEOUT }, async () => {
    const [d1, d2] = dockerds as [Dockerd, Dockerd];
    const inspect = async (d: Dockerd, name: string) => JSON.parse(await dockerOk(d.socket, ['inspect', name]))[0];
    const netnsOf = (c: { State: { Pid: number } }) => inNetnsPath(`/proc/${c.State.Pid}/ns/net`);
    const gwbridgeOf = async () => {
      const r = await docker(d1.socket, ['network', 'inspect', 'docker_gwbridge']);
      assert.equal(r.code, 0, `dockerd made its docker_gwbridge: ${r.stderr}`);
      return JSON.parse(r.stdout)[0];
    };
    try {
      await dockerOk(d1.socket, ['run', '-d', '--name', 'web', '--network', 'dov', '-p', '8081:80', BENCH_IMAGE,
        'sh', '-c', 'mkdir /www && echo web-on-overlay > /www/index.html && exec httpd -f -p 80 -h /www']);
      const web = await inspect(d1, 'web');
      const webNs = netnsOf(web);
      const caAddr: string = (await inspect(d1, 'ca')).NetworkSettings.Networks.dov.IPAddress;
      const bAddr: string = (await inspect(d2, 'cb')).NetworkSettings.Networks.dov.IPAddress;

      // dockerd gave the container an endpoint gateway_<12 hex> on its own docker_gwbridge, and the default route.
      const gwbridge = await gwbridgeOf();
      assert.match(gwbridge.Containers?.[web.Id]?.Name ?? '', /^gateway_[0-9a-f]{12}$/, JSON.stringify(gwbridge.Containers));
      const route = (await webNs(['ip', '-4', 'route', 'show', 'default'])).stdout;
      assert.match(route, new RegExp(`^default via ${gwbridge.IPAM.Config[0].Gateway.replaceAll('.', '\\.')} dev eth1`), route);
      // Out: the outside sees the host's address (Docker's masquerade), not the container's.
      assert.equal(reached(await tcpRead(webNs, OUTSIDE, 8080), 'container on the overlay → outside'), `outside ${HOST_UPLINK}`);
      // -p 8081:80: a neighbour reaches the container through the host's address.
      assert.equal(reached(await httpGet(inNamespace(outside!), HOST_UPLINK, 8081), 'neighbour → host 1:8081 → container:80'), 'web-on-overlay');
      // dockerd published it on the docker_gwbridge endpoint itself: nothing of it in cnm's table.
      const cnmPorts = await daemons[0]!.inHost('nft', ['list', 'map', 'inet', 'cnm', 'ports_any']);
      assert.equal(cnmPorts.code, 0, cnmPorts.stderr);
      assert.doesNotMatch(cnmPorts.stdout, /\b8081\b/);
      // The overlay itself still carries the traffic between hosts.
      await pingUntilReached(webNs, bAddr, 'container web (host 1) → container b (host 2) over the overlay');

      // An internal overlay: Docker adds no docker_gwbridge endpoint, and the same probe finds no way out.
      await dockerOk(d1.socket, ['network', 'create', '-d', plugins[0]!, '--internal', '-o', 'cnm.driver=overlay', '-o', 'cnm.name=dint', '--subnet', '10.93.0.0/24', 'dint']);
      await dockerOk(d1.socket, ['run', '-d', '--name', 'ci', '--network', 'dint', BENCH_IMAGE, 'sleep', '600']);
      const ci = await inspect(d1, 'ci');
      blocked(await tcpRead(netnsOf(ci), OUTSIDE, 8080), 'container on an internal overlay → outside', ['no-route']);
      assert.equal((await gwbridgeOf()).Containers?.[ci.Id], undefined, 'no docker_gwbridge endpoint for the internal overlay\'s container');

      // Names: Docker's DNS answers a container of the same dockerd on the same overlay with its overlay
      // address only; a container of another overlay, on the same docker_gwbridge, is neither named (gateway
      // endpoints are anonymous) nor reached there (enable_icc=false).
      await dockerOk(d1.socket, ['network', 'create', '-d', plugins[0]!, '-o', 'cnm.driver=overlay', '-o', 'cnm.name=dov2', '--subnet', '10.94.0.0/24', 'dov2']);
      await dockerOk(d1.socket, ['run', '-d', '--name', 'cz', '--network', 'dov2', BENCH_IMAGE, 'sleep', '600']);
      const cz = await inspect(d1, 'cz');
      const czGateway: string = (await gwbridgeOf()).Containers[cz.Id].IPv4Address.split('/')[0];
      assert.deepEqual(await dockerDnsA(webNs, 'ca'), [caAddr], 'ca: its overlay address, not its docker_gwbridge one');
      assert.deepEqual(await dockerDnsA(webNs, 'cz'), [], 'cz shares only docker_gwbridge with web');
      assert.deepEqual(await dockerDnsA(webNs, 'cb'), [], 'cb is another dockerd\'s container');
      reached(await ping(webNs, caAddr), 'web → ca on the overlay');
      blocked(await ping(webNs, czGateway), 'web → cz through docker_gwbridge');
    } finally {
      await docker(d1.socket, ['rm', '-f', 'web', 'ci', 'cz']);
      await docker(d1.socket, ['network', 'rm', 'dint', 'dov2']);
    }
  });

  it('docker rm and docker network rm: host 2 lets go of its reference, host 1 removes the overlay everywhere', { timeout: TIMEOUT }, async () => {
    const [d1, d2] = dockerds as [Dockerd, Dockerd];
    const [c1, c2] = daemons as [TestDaemon, TestDaemon];
    await dockerOk(d2.socket, ['rm', '-f', 'cb']);
    assert.equal((await c2.api('DELETE', '/cnm/v1/sandboxes/s2')).status, 204);
    await dockerOk(d2.socket, ['network', 'rm', 'dov']);
    assert.equal((await c1.api('GET', '/networks/dov')).status, 200, 'host 2 removing its Docker network keeps the overlay');
    // Host 1's container still has it; then it goes, and the network with it, on both hosts.
    await dockerOk(d1.socket, ['rm', '-f', 'ca']);
    await dockerOk(d1.socket, ['network', 'rm', 'dov']);
    assert.equal((await c1.api('GET', '/networks/dov')).status, 404);
    const deadline = Date.now() + 30_000;
    while ((await c2.api('GET', '/networks/dov')).status !== 404) {
      assert.ok(Date.now() < deadline, 'host 2 forgot the overlay');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
