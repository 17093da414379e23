/**
 * Three real cnm daemons, one per "host" namespace, each with --cluster-store on a real 3-member etcd
 * (reached through the members' unix sockets) and --advertise-addr on an underlay: a bridge in a fourth
 * namespace joins the hosts' `cnmeth0` links (10.199.0.1-3/24). An overlay network created on host 1 is
 * listed by `cnm network ls` on every host; sandboxes on hosts 1, 2 and 3 on it ping each other by IP,
 * and by name through the embedded DNS (127.0.0.11 answers the other hosts' sandboxes' names).
 * When a host's daemon is SIGKILLed, the others withdraw its endpoint (and its name) by themselves once
 * its lease expires (--host-ttl 3), while the live host stays reachable; restarted, it is reachable again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestDaemon } from '../helpers/daemon.js';
import { cli, ping, resolveA, startDaemonCluster, until, type DaemonCluster } from '../helpers/daemon-cluster.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';
import { underlayAddress as vtep } from '../helpers/underlay.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 300_000;
const TTL = 3;

describe('three daemons on one etcd: a global overlay network', { skip }, () => {
  let cluster: DaemonCluster | undefined;
  before(async () => {
    cluster = await startDaemonCluster({ ttl: TTL });
  });
  after(async () => {
    await cluster?.close();
  });

  it('network ls on every host; sandboxes on three hosts ping each other; a dead host is withdrawn, then back', { timeout: TIMEOUT }, async () => {
    const daemons = cluster!.daemons;
    const [d1, , d3] = daemons as [TestDaemon, TestDaemon, TestDaemon];
    await cli(d1, 'network', 'create', '--driver', 'overlay', '--subnet', '10.91.0.0/24', 'ov');
    for (const d of daemons) {
      await until(`ov in network ls on ${d.hostNs}`, async () => /\sov\s+overlay\s+global\b/.test(await cli(d, 'network', 'ls')));
    }

    const ips: string[] = [];
    for (const [i, d] of daemons.entries()) {
      await cli(d, 'sandbox', 'create', `s${i + 1}`, '--network', 'ov');
      const inspect = (await d.api('GET', '/networks/ov')).json() as { Containers: Record<string, { Name: string; IPv4Address: string }> };
      const mine = Object.values(inspect.Containers);
      assert.deepEqual(mine.map((c) => c.Name), [`s${i + 1}`], 'Containers: only this host\'s sandbox');
      ips.push(mine[0]!.IPv4Address.split('/')[0]!);
    }
    assert.equal(new Set(ips).size, 3, `distinct addresses ${ips}`);
    for (const [i, d] of daemons.entries()) {
      for (const [j, target] of ips.entries()) {
        if (i === j) continue;
        await until(`s${i + 1} -> s${j + 1} (${target})`, async () => (await ping(d, `s${i + 1}`, target)) === 0);
      }
    }
    // Names across hosts: host 1's embedded DNS answers host 3's and host 2's sandboxes, and ping by name works.
    await until('s3 resolves on host 1', async () => (await resolveA(d1, 's1', 's3')).addresses.length > 0);
    assert.deepEqual(await resolveA(d1, 's1', 's3'), { status: 'NOERROR', addresses: [ips[2]] });
    assert.deepEqual(await resolveA(d1, 's1', 's2.ov'), { status: 'NOERROR', addresses: [ips[1]] });
    assert.equal(await ping(d1, 's1', 's3'), 0, 'ping s3 by name from host 1');
    await until('s1 resolves on host 3', async () => (await resolveA(d3, 's3', 's1')).addresses.length > 0);
    assert.deepEqual((await resolveA(d3, 's3', 's1')).addresses, [ips[0]]);

    const peers = (await d1.api('GET', '/networks/ov')).json() as { Peers?: Array<{ IP: string }> };
    assert.deepEqual(peers.Peers?.map((p) => p.IP).sort(), [vtep(1), vtep(2), vtep(3)]);

    // Host 3's daemon dies (its sandbox and devices stay): once its lease expires, host 1 withdraws its
    // endpoint by itself, while host 2 stays reachable. (Whether host 1 still reaches s3 before the
    // expiry depends on how fast the probe runs against the 3 s TTL: not asserted.)
    await d3.stop('SIGKILL');
    await until('s3 withdrawn on host 1', async () => (await ping(d1, 's1', ips[2]!)) === 1);
    assert.equal(await ping(d1, 's1', ips[1]!), 0, 'host 2 still reachable');
    // Its name goes with it; host 2's still answers.
    await until('s3 name withdrawn on host 1', async () => (await resolveA(d1, 's1', 's3')).addresses.length === 0);
    assert.notEqual((await resolveA(d1, 's1', 's3')).status, 'NOERROR', 's3 is no name of ours any more');
    assert.deepEqual((await resolveA(d1, 's1', 's2')).addresses, [ips[1]], 's2 still answered');
    await until('Peers without host 3', async () => {
      const p = ((await d1.api('GET', '/networks/ov')).json() as { Peers?: Array<{ IP: string }> }).Peers ?? [];
      return p.map((x) => x.IP).sort().join() === [vtep(1), vtep(2)].join();
    });

    // Back: it registers again and the others program its endpoint again.
    await d3.start();
    await until('s1 -> s3 after the restart', async () => (await ping(d1, 's1', ips[2]!)) === 0);
    await until('s3 -> s2 after the restart', async () => (await ping(d3, 's3', ips[1]!)) === 0);
    await until('s3 resolves on host 1 again', async () => (await resolveA(d1, 's1', 's3')).addresses.join() === ips[2]);
  });
});
