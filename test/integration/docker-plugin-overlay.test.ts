/**
 * Docker containers on two hosts on one cnm overlay, no swarm: two real dockerds (Debian docker.io), each
 * in its own throwaway namespace ("host") with its own data root, exec root and socket, the two
 * namespaces on an underlay bridge (10.199.0.1 and .2); a cnm daemon beside each dockerd with
 * --cluster-store on one real etcd member and --docker-plugin (a unique plugin name per host: both
 * dockerds look in the one /run/docker/plugins). `docker network create -d PLUGIN -o cnm.driver=overlay
 * -o cnm.name=dov` on both hosts ends up as ONE cnm global overlay; containers on the two hosts reach
 * each other over VXLAN, a cnm sandbox on host 2 is reached from host 1's container, and an address
 * taken on one host is refused on the other (cluster-wide claims).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { BENCH_IMAGE, dockerAvailable, startDockerd, type Dockerd } from '../../bench/lib/dockerd.js';
import { dockerCli } from '../helpers/docker-cli.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { createTestNetns, deleteTestNetns } from '../helpers/netns.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { inNetnsPath, ping, reached, type CommandRunner } from '../helpers/probe.js';

const PLUGIN_DIR = '/run/docker/plugins';
const TIMEOUT = 600_000;
const DOCKER_CONFIG = `/tmp/cnmt-docker-config-ov-${process.pid}`;

const { docker, dockerOk } = dockerCli(DOCKER_CONFIG);

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
  const dockerds: Dockerd[] = [];
  const daemons: TestDaemon[] = [];
  const tag = randomBytes(3).toString('hex');
  const plugins = [`cnmt-${tag}-1`, `cnmt-${tag}-2`];
  const vtep = (i: number) => `10.199.0.${i + 1}`;

  before(async () => {
    etcd = await startEtcdCluster(1);
    for (let i = 0; i < 2; i++) dockerds.push(await startDockerd(['--bridge', 'none', '--iptables=false', '--ip6tables=false']));
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
  });

  after(async () => {
    for (const d of dockerds) await docker(d.socket, ['rm', '-f', 'ca', 'cb', 'cb2']).catch(() => undefined);
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
