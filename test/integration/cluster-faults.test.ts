/**
 * Faults of the cluster store with three real daemons on a real 3-member etcd (issue 12, "Faults"):
 * - one member down (the raft leader, SIGKILLed): creating an overlay network, sandboxes created on the
 *   three hosts AT THE SAME MOMENT (distinct addresses: the global IPAM's transactions), pings across
 *   hosts, removal and `network ls` everywhere all work; the member comes back and catches up;
 * - etcd entirely stopped, for longer than twice the host TTL: existing sandboxes on the overlay keep
 *   pinging each other across hosts, by IP and by name (the data plane and the DNS never wait on etcd,
 *   and no host withdraws another: etcd's leases do not run while etcd is down); global operations
 *   answer 503 with a clear message through the CLI and the Docker API; a local bridge network can be
 *   made and used; etcd back, the refused operations work and every host converges (a sandbox created
 *   on host 2 after the recovery is reachable from host 1 by IP and by name).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDaemon } from '../helpers/daemon.js';
import { cli, ping, resolveA, sandboxAddress, startDaemonCluster, until, type DaemonCluster } from '../helpers/daemon-cluster.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 300_000;
const TTL = 3;

describe('three daemons on a 3-member etcd: faults of the cluster store', { skip }, () => {
  let cluster: DaemonCluster | undefined;
  let d: [TestDaemon, TestDaemon, TestDaemon];
  before(async () => {
    // The periodic check (peers re-sent to the driver, broken networks retried) every second: it runs
    // many times during the outages.
    cluster = await startDaemonCluster({ ttl: TTL, extraArgs: ['--firewall-check-interval', '1'] });
    d = cluster.daemons as [TestDaemon, TestDaemon, TestDaemon];
  });
  after(async () => {
    await cluster?.close();
  });
  const listed = async (daemon: TestDaemon, name: string) => new RegExp(`\\s${name}\\s+overlay\\s+global\\b`).test(await cli(daemon, 'network', 'ls'));

  it('one etcd member down (the leader): create, concurrent connects on three hosts, ping, remove, ls; then it comes back', { timeout: TIMEOUT }, async () => {
    const etcd = cluster!.etcd;
    const down = await etcd.leader();
    await etcd.stop(down, 'SIGKILL');
    try {
      await cli(d[0], 'network', 'create', '--driver', 'overlay', '--subnet', '10.93.0.0/24', 'ovm');
      for (const daemon of d) await until(`ovm listed on ${daemon.hostNs}`, () => listed(daemon, 'ovm'));
      // The three hosts connect at the same moment: each takes the lowest free address it knows, so
      // only the cluster-wide claim (a transaction in etcd) keeps them apart.
      await Promise.all(d.map((daemon, i) => cli(daemon, 'sandbox', 'create', `m${i + 1}`, '--network', 'ovm')));
      const ips = await Promise.all(d.map((daemon, i) => sandboxAddress(daemon, 'ovm', `m${i + 1}`)));
      assert.equal(new Set(ips).size, 3, `distinct addresses ${ips}`);
      for (const [from, to] of [[0, 1], [1, 2], [2, 0]] as const) {
        await until(`m${from + 1} -> m${to + 1}`, async () => (await ping(d[from], `m${from + 1}`, ips[to]!)) === 0);
      }
      for (const [i, daemon] of d.entries()) await cli(daemon, 'sandbox', 'rm', `m${i + 1}`);
      await until('host 1 sees the remote endpoints go', async () => ((await d[0].api('GET', '/networks/ovm')).json() as { Peers?: unknown[] }).Peers?.length === 0);
      await cli(d[0], 'network', 'rm', 'ovm');
      for (const daemon of d) await until(`ovm gone from ls on ${daemon.hostNs}`, async () => !(await listed(daemon, 'ovm')));
    } finally {
      await etcd.restart(down);
    }
    // Back: the cluster works with it, and it has caught up with what was written without it.
    await cli(d[1], 'network', 'create', '--driver', 'overlay', '--subnet', '10.93.1.0/24', 'ovback');
    for (const daemon of d) await until(`ovback listed on ${daemon.hostNs}`, () => listed(daemon, 'ovback'));
    await until('the member that came back has the new network and not the removed one', async () => {
      const names = await etcd.etcdctl(['get', '--prefix', '--keys-only', '--consistency=s', '/cnm/default/cnm/v1/names/networks/'], [down]);
      return names.includes('/ovback') && !names.includes('/ovm');
    });
    await cli(d[1], 'network', 'rm', 'ovback');
  });

  it('etcd entirely stopped: the overlay forwards and answers names, global operations 503, local ones work; back: converges', { timeout: TIMEOUT }, async () => {
    const etcd = cluster!.etcd;
    await cli(d[0], 'network', 'create', '--driver', 'overlay', '--subnet', '10.94.0.0/24', 'ovx');
    for (const daemon of d.slice(0, 2)) await until(`ovx listed on ${daemon.hostNs}`, () => listed(daemon, 'ovx'));
    await cli(d[0], 'sandbox', 'create', 'x1', '--network', 'ovx');
    await cli(d[1], 'sandbox', 'create', 'x2', '--network', 'ovx');
    const x1 = await sandboxAddress(d[0], 'ovx', 'x1');
    const x2 = await sandboxAddress(d[1], 'ovx', 'x2');
    await until('x1 -> x2', async () => (await ping(d[0], 'x1', x2)) === 0);
    await until('x2 resolves on host 1', async () => (await resolveA(d[0], 'x1', 'x2')).addresses.join() === x2);

    const stoppedAt = Date.now();
    await Promise.all([0, 1, 2].map((i) => etcd.stop(i, 'SIGKILL')));
    try {
      // Global operations: 503 with a message that says what is wrong, through the CLI and the Docker API.
      const refused = await d[0].cli(['network', 'create', '--driver', 'overlay', '--subnet', '10.94.1.0/24', 'ovlate']);
      assert.notEqual(refused.code, 0, 'network create refused');
      assert.match(refused.stderr, /Error response from daemon: .*cluster store unreachable/);
      const api = await d[1].api('POST', '/cnm/v1/sandboxes', { Name: 'x2late', Networks: [{ Network: 'ovx' }] });
      assert.equal(api.status, 503, api.body);
      assert.match((api.json() as { message: string }).message, /cluster store unreachable: no etcd endpoint answered/);
      const docker = await d[1].api('POST', '/networks/create', { Name: 'ovlate2', Driver: 'overlay', Attachable: true });
      assert.equal(docker.status, 503, docker.body);
      assert.match((docker.json() as { message: string }).message, /cluster store unreachable/);
      // ...and changed nothing.
      assert.equal((await d[0].api('GET', '/networks/ovlate')).status, 404);
      assert.equal((await d[1].api('GET', '/cnm/v1/sandboxes/x2late')).status, 404);

      // Local networks keep working: a bridge network made and used on host 1.
      await cli(d[0], 'network', 'create', '--subnet', '10.95.0.0/24', 'localbr');
      await cli(d[0], 'sandbox', 'create', 'l1', '--network', 'localbr');
      await cli(d[0], 'sandbox', 'create', 'l2', '--network', 'localbr');
      assert.equal(await ping(d[0], 'l1', await sandboxAddress(d[0], 'localbr', 'l2')), 0, 'bridge network while etcd is down');

      // Longer than the host TTL twice over: a lease that ran out would withdraw the hosts from each other.
      while (Date.now() - stoppedAt < 2 * TTL * 1000 + 500) await new Promise((r) => setTimeout(r, 200));
      assert.equal(await ping(d[0], 'x1', x2), 0, 'x1 -> x2 by IP, etcd down');
      assert.equal(await ping(d[1], 'x2', x1), 0, 'x2 -> x1 by IP, etcd down');
      assert.deepEqual(await resolveA(d[0], 'x1', 'x2'), { status: 'NOERROR', addresses: [x2] });
      assert.equal(await ping(d[1], 'x2', 'x1'), 0, 'x2 -> x1 by name, etcd down');
      assert.ok(await listed(d[2], 'ovx'), 'ls on host 3 from its cache');
    } finally {
      await Promise.all([0, 1, 2].map((i) => etcd.restart(i)));
    }

    // Back: the operations refused during the outage work (the daemons' clients reconnect by themselves).
    await until('network create works again', async () => (await d[0].cli(['network', 'create', '--driver', 'overlay', '--subnet', '10.94.1.0/24', 'ovlate'])).code === 0);
    for (const daemon of d) await until(`ovlate listed on ${daemon.hostNs}`, () => listed(daemon, 'ovlate'));
    await until('sandbox create works again', async () => (await d[1].api('POST', '/cnm/v1/sandboxes', { Name: 'x2late', Networks: [{ Network: 'ovx' }] })).status === 201);
    const late = await sandboxAddress(d[1], 'ovx', 'x2late');
    await until('host 1 reaches the sandbox created on host 2 after the recovery', async () => (await ping(d[0], 'x1', late)) === 0);
    await until('and resolves its name', async () => (await resolveA(d[0], 'x1', 'x2late')).addresses.join() === late);
    assert.equal(await ping(d[0], 'x1', x2), 0, 'the old peer is still there');
    const peers = ((await d[0].api('GET', '/networks/ovx')).json() as { Peers?: Array<{ IP: string }> }).Peers ?? [];
    assert.deepEqual(peers.map((p) => p.IP).sort(), ['10.199.0.1', '10.199.0.2']);
    // Through both outages no host's lease ran out: none left, none had to register again.
    for (const daemon of d) {
      assert.match(daemon.logs(), /joined the cluster/, 'the log is the daemon\'s');
      assert.doesNotMatch(daemon.logs(), /host left|membership lost/, `${daemon.hostNs} saw a host leave`);
    }
  });
});
