/**
 * Global-scope networks on a real etcd: three controllers (three "hosts", the recording kernel and the
 * recording global driver) share one etcd. Networks appear on every host, cluster-wide numbers and
 * addresses are unique under races, setPeers gets exactly the other live hosts' endpoints, a dead
 * host's lease expiry withdraws them, removal is refused while any host has endpoints, etcd down means
 * 503 for global mutations while local ones work, and a restart republishes what etcd lost.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpStatusOf } from '../../src/errors.js';
import { threeHostsOnEtcd, until, type ClusterHost } from '../helpers/cluster-hosts.js';
import { TEST_ID_OPTION } from '../helpers/global-driver.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;

async function rejects(p: Promise<unknown>, status: number, match?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(httpStatusOf(err), status, `status of ${(err as Error).message}`);
    if (match) assert.match((err as Error).message, match);
    return true;
  });
}

describe('global-scope networks on a real etcd (three controllers)', { skip }, () => {
  const { etcd, threeHosts, adopt } = threeHostsOnEtcd();
  const names = (h: ClusterHost) => h.controller.listNetworks().map((n) => n.network.name).sort();

  it('a network created on host 1 appears on hosts 2 and 3 (created in their drivers) and goes with rm', { timeout: TIMEOUT }, async () => {
    const [h1, h2, h3] = await threeHosts();
    const { id } = await h1!.controller.createNetwork({ name: 'gnet', driver: 'gtest', ipam: { configs: [{ subnet: '10.77.0.0/24' }] } });
    for (const h of [h2!, h3!]) await until(`gnet on ${h.id}`, () => names(h).includes('gnet'));
    for (const h of [h1!, h2!, h3!]) {
      const net = h.controller.getNetwork('gnet').network;
      assert.equal(net.id, id);
      assert.equal(net.scope, 'global');
      assert.deepEqual(net.ipam.pools.map((p) => p.subnet), ['10.77.0.0/24']);
      assert.ok(Number(net.options[TEST_ID_OPTION]) >= 4096, `cluster id ${net.options[TEST_ID_OPTION]}`);
      assert.deepEqual(h.driver.networks.get(id), { clusterId: Number(net.options[TEST_ID_OPTION]) }, `created in ${h.id}'s driver`);
    }
    // Local networks stay local: host 2's bridge network is not on host 1.
    await h2!.controller.createNetwork({ name: 'only2', ipam: { configs: [{ subnet: '10.78.0.0/24' }] } });
    assert.ok(!(await h1!.shared.list('cnm/v1/names/networks/only2')).length, 'local network not in etcd');
    // The name is taken cluster-wide.
    await rejects(h3!.controller.createNetwork({ name: 'gnet', driver: 'gtest' }), 409, /already exists/);

    await h2!.controller.removeNetwork('gnet');
    for (const h of [h1!, h3!]) await until(`gnet gone from ${h.id}`, () => !names(h).includes('gnet'));
    for (const h of [h1!, h2!, h3!]) assert.equal(h.driver.networks.has(id), false, `deleted in ${h.id}'s driver`);
    assert.deepEqual(await h1!.shared.list('cnm/v1/cluster-ids/'), [], 'the cluster id claim went with it');
  });

  it('automatic subnets of global networks come from 10.0.0.0/8, apart from every host\'s local defaults', { timeout: TIMEOUT }, async () => {
    const [h1, h2] = (await threeHosts()) as [ClusterHost, ClusterHost, ClusterHost];
    // Host 2 fills the first local default subnet on its own; host 1 knows nothing of it.
    await h2.controller.createNetwork({ name: 'local2' });
    const local2 = h2.controller.getNetwork('local2').network.ipam.pools[0]!.subnet;
    await h1.controller.createNetwork({ name: 'auto1', driver: 'gtest' });
    assert.equal(h1.controller.getNetwork('auto1').network.ipam.pools[0]!.subnet, '10.0.0.0/24');
    await until('auto1 on host 2', () => names(h2).includes('auto1'));
    assert.equal(h2.controller.getNetwork('auto1').network.ipam.pools[0]!.subnet, '10.0.0.0/24');
    assert.equal(h2.controller.getNetwork('local2').network.ipam.pools[0]!.subnet, local2);
    // Host 2's next global network takes the next one: it knows host 1's.
    await h2.controller.createNetwork({ name: 'auto2', driver: 'gtest' });
    assert.equal(h2.controller.getNetwork('auto2').network.ipam.pools[0]!.subnet, '10.0.1.0/24');
    // And host 2 can use the global network it learnt (its pool is reserved there).
    const sb = await h2.controller.createSandbox({ name: 'on-auto1', networks: [{ network: 'auto1' }] });
    assert.equal(sb.endpoints[0]!.endpoint.ipv4Address, '10.0.0.2/24');
  });

  it('cluster ids: unique under a race of three hosts, a given one claimed, 409 when taken', { timeout: TIMEOUT }, async () => {
    const hs = await threeHosts();
    const created = await Promise.all(hs.map((h, i) => h.controller.createNetwork({ name: `race${i}`, driver: 'gtest', ipam: { configs: [{ subnet: `10.80.${i}.0/24` }] } })));
    const ids = created.map(({ id }, i) => Number(hs[i]!.controller.getNetwork(id).network.options[TEST_ID_OPTION]));
    assert.equal(new Set(ids).size, 3, `distinct ids ${ids}`);
    for (const n of ids) assert.ok(n >= 4096 && n < 4096 + 3 + 32, `id ${n} from the bottom of the range`);

    await hs[0]!.controller.createNetwork({ name: 'given', driver: 'gtest', options: { [TEST_ID_OPTION]: '70000' }, ipam: { configs: [{ subnet: '10.81.0.0/24' }] } });
    assert.equal(hs[0]!.controller.getNetwork('given').network.options[TEST_ID_OPTION], '70000');
    await rejects(
      hs[1]!.controller.createNetwork({ name: 'given2', driver: 'gtest', options: { [TEST_ID_OPTION]: '70000' }, ipam: { configs: [{ subnet: '10.81.1.0/24' }] } }),
      409,
      /70000 is already in use/,
    );
    await rejects(hs[1]!.controller.createNetwork({ name: 'given3', driver: 'gtest', options: { [TEST_ID_OPTION]: '12' } }), 400, /from 4096/);
    for (const name of ['given2', 'given3']) {
      assert.ok(!names(hs[1]!).includes(name), `${name} not created`);
      assert.deepEqual(await hs[1]!.shared.list(`cnm/v1/names/networks/${name}`), [], `${name} not claimed`);
    }
  });

  it('endpoints created at the same moment on three hosts get distinct addresses', { timeout: TIMEOUT }, async () => {
    const hs = await threeHosts();
    await hs[0]!.controller.createNetwork({ name: 'addr', driver: 'gtest', ipam: { configs: [{ subnet: '10.82.0.0/24' }] } });
    for (const h of hs) await until(`addr on ${h.id}`, () => names(h).includes('addr'));
    const PER_HOST = 6;
    const eps = await Promise.all(
      hs.flatMap((h) => Array.from({ length: PER_HOST }, (_, i) => h.controller.createSandbox({ name: `${h.id}-s${i}`, networks: [{ network: 'addr' }] }))),
    );
    const addresses = eps.map((d) => d.endpoints[0]!.endpoint.ipv4Address!);
    assert.equal(new Set(addresses).size, addresses.length, `distinct: ${addresses.sort().join(' ')}`);
    const claims = await hs[0]!.shared.list('cnm/v1/ipam/addresses/');
    assert.equal(claims.length, 3 * PER_HOST, 'one claim per endpoint in etcd');
    // Each host's IPAM learns the others' addresses: a later endpoint anywhere is distinct too.
    for (const h of hs) await until(`${h.id} knows the others' endpoints`, () => h.controller.getNetwork('addr').peers?.length === 3);
    const late = await hs[1]!.controller.createSandbox({ name: 'late', networks: [{ network: 'addr' }] });
    assert.ok(!addresses.includes(late.endpoints[0]!.endpoint.ipv4Address!), 'the late endpoint took a free address');
  });

  it('setPeers gets exactly the other hosts\' endpoints, follows connect/disconnect, and drops a dead host', { timeout: TIMEOUT }, async () => {
    const hs = await threeHosts(3);
    const [h1, h2, h3] = hs as [ClusterHost, ClusterHost, ClusterHost];
    const { id } = await h1.controller.createNetwork({ name: 'peers', driver: 'gtest', ipam: { configs: [{ subnet: '10.83.0.0/24' }] } });
    for (const h of hs) await until(`peers on ${h.id}`, () => names(h).includes('peers'));
    const a = await h1.controller.createSandbox({ name: 'a', networks: [{ network: 'peers' }] });
    const b = await h2.controller.createSandbox({ name: 'b', networks: [{ network: 'peers' }] });
    const c = await h3.controller.createSandbox({ name: 'c', networks: [{ network: 'peers' }] });
    const peer = (d: typeof a, vtep: string) => {
      const ep = d.endpoints[0]!.endpoint;
      return { mac: ep.macAddress, ips: [ep.ipv4Address!.split('/')[0]!], vtep };
    };
    const sorted = (l: Array<{ mac: string }>) => [...l].sort((x, y) => x.mac.localeCompare(y.mac));
    const want = new Map([
      [h1, sorted([peer(b, '192.0.2.2'), peer(c, '192.0.2.3')])],
      [h2, sorted([peer(a, '192.0.2.1'), peer(c, '192.0.2.3')])],
      [h3, sorted([peer(a, '192.0.2.1'), peer(b, '192.0.2.2')])],
    ]);
    for (const [h, list] of want) {
      await until(`${h.id}'s peers`, () => JSON.stringify(h.driver.peers.get(id)) === JSON.stringify(list));
    }
    // Inspect: Peers lists the three hosts; Containers only this host's own endpoint.
    const detail = h1.controller.getNetwork('peers');
    assert.deepEqual(detail.peers, [
      { name: 'host-1', ip: '192.0.2.1' },
      { name: 'host-2', ip: '192.0.2.2' },
      { name: 'host-3', ip: '192.0.2.3' },
    ]);
    assert.deepEqual(detail.endpoints.map((e) => e.sandbox.name), ['a']);

    // Disconnect on host 2: withdrawn on 1 and 3.
    await h2.controller.disconnect('peers', 'b', false);
    await until('b withdrawn on host 1', () => JSON.stringify(h1.driver.peers.get(id)) === JSON.stringify([peer(c, '192.0.2.3')]));
    await until('b withdrawn on host 3', () => JSON.stringify(h3.driver.peers.get(id)) === JSON.stringify([peer(a, '192.0.2.1')]));
    // Connect again: back.
    const b2 = await h2.controller.connect({ network: 'peers', sandbox: 'b' });
    const pb2 = { mac: b2.macAddress, ips: [b2.ipv4Address!.split('/')[0]!], vtep: '192.0.2.2' };
    await until('b back on host 1', () => JSON.stringify(h1.driver.peers.get(id)) === JSON.stringify(sorted([pb2, peer(c, '192.0.2.3')])));

    // Host 3 dies: its lease expires (TTL 3 s) and hosts 1 and 2 withdraw its endpoint on their own,
    // although its record is still in etcd.
    await h3.crash();
    await until('c withdrawn on host 1', () => JSON.stringify(h1.driver.peers.get(id)) === JSON.stringify([pb2]));
    await until('c withdrawn on host 2', () => JSON.stringify(h2.driver.peers.get(id)) === JSON.stringify([peer(a, '192.0.2.1')]));
    assert.equal((await h1.shared.list('cnm/v1/endpoints/')).length, 3, "the dead host's record stays in etcd");
    assert.deepEqual(h1.controller.getNetwork('peers').peers?.map((p) => p.name), ['host-1', 'host-2']);
  });

  it('the periodic check re-sends unchanged peer lists; a failed setPeers is tried again', { timeout: TIMEOUT }, async () => {
    const [h1, h2] = (await threeHosts()) as [ClusterHost, ClusterHost, ClusterHost];
    const { id } = await h1.controller.createNetwork({ name: 'again', driver: 'gtest', ipam: { configs: [{ subnet: '10.90.0.0/24' }] } });
    await until('again on host 2', () => names(h2).includes('again'));
    await h2.controller.createSandbox({ name: 'r1', networks: [{ network: 'again' }] });
    await until('host 1 has one peer', () => (h1.driver.peers.get(id) ?? []).length === 1);
    const sent = () => h1.driver.calls.filter((c) => c === 'peers again 1').length;
    const before = sent();
    await h1.controller.syncCluster();
    assert.equal(sent(), before + 1, 'the unchanged list sent again by the periodic check');

    // The driver fails: the change is not lost; any later change of the cluster (here another network
    // made elsewhere) sends it again, and so would the periodic check.
    h1.driver.failSetPeers = true;
    await h2.controller.createSandbox({ name: 'r2', networks: [{ network: 'again' }] });
    await until('host 1 tried to send both', () => h1.driver.calls.includes('peers-failed again 2'));
    assert.equal((h1.driver.peers.get(id) ?? []).length, 1, 'still the old list while setPeers fails');
    h1.driver.failSetPeers = false;
    await h2.controller.createNetwork({ name: 'unrelated', driver: 'gtest', ipam: { configs: [{ subnet: '10.90.1.0/24' }] } });
    await until('the repaired driver has both', () => (h1.driver.peers.get(id) ?? []).length === 2);
  });

  it('rm is refused while another host has endpoints on the network', { timeout: TIMEOUT }, async () => {
    const [h1, h2] = (await threeHosts()) as [ClusterHost, ClusterHost, ClusterHost];
    await h1.controller.createNetwork({ name: 'busy', driver: 'gtest', ipam: { configs: [{ subnet: '10.84.0.0/24' }] } });
    await until('busy on host 2', () => names(h2).includes('busy'));
    await h2.controller.createSandbox({ name: 'remote', networks: [{ network: 'busy' }] });
    await until('host 1 sees the remote endpoint', () => (h1.controller.getNetwork('busy').peers?.length ?? 0) === 1);
    await rejects(h1.controller.removeNetwork('busy'), 403, /has active endpoints \(remote on host host-2\)/);
    assert.ok(names(h1).includes('busy'));
    assert.equal((await h1.shared.list('cnm/v1/networks/')).length, 1, 'record still in etcd');
    await h2.controller.removeSandbox('remote', true);
    await until('host 1 sees the endpoint go', () => (h1.controller.getNetwork('busy').peers?.length ?? 1) === 0);
    await h1.controller.removeNetwork('busy');
    await until('busy gone on host 2', () => !names(h2).includes('busy'));
  });

  it('a dead host\'s endpoints stop blocking rm once its lease expired; rm removes its records with the network', { timeout: TIMEOUT }, async () => {
    const [h1, h2, h3] = (await threeHosts(2)) as [ClusterHost, ClusterHost, ClusterHost];
    const { id } = await h1.controller.createNetwork({ name: 'orphaned', driver: 'gtest', ipam: { configs: [{ subnet: '10.83.0.0/24' }] } });
    await until('orphaned on host 3', () => names(h3).includes('orphaned'));
    const sb = await h3.controller.createSandbox({ name: 'lost', networks: [{ network: 'orphaned' }] });
    const ep = sb.endpoints[0]!.endpoint;
    const addressKey = `cnm/v1/ipam/addresses/10.83.0.0_24/${ep.ipv4Address!.split('/')[0]}`;
    await until('host 1 sees the remote endpoint', () => (h1.controller.getNetwork('orphaned').peers?.length ?? 0) === 1);
    // While host 3 lives, its endpoint keeps the network in use.
    await rejects(h1.controller.removeNetwork('orphaned'), 403, /has active endpoints \(lost on host host-3\)/);
    await h3.crash();
    await until('host 3\'s lease expired (host 1 withdrew its peer)', () => (h1.driver.peers.get(id) ?? [1]).length === 0, 30_000);
    assert.ok(await h1.shared.get(`cnm/v1/endpoints/${ep.id}`), 'the dead host\'s record is still in etcd');
    await h1.controller.removeNetwork('orphaned');
    assert.equal(await h1.shared.get(`cnm/v1/endpoints/${ep.id}`), undefined, 'its endpoint record went with the network');
    assert.equal(await h1.shared.get(addressKey), undefined, 'and its address claim');
    await until('orphaned gone on host 2', () => !names(h2).includes('orphaned'));
  });

  it('rm of a network with a departed host\'s endpoints fails if that host registers again first', { timeout: TIMEOUT }, async () => {
    const [h1, , h3] = (await threeHosts(2)) as [ClusterHost, ClusterHost, ClusterHost];
    await h1.controller.createNetwork({ name: 'comeback', driver: 'gtest', ipam: { configs: [{ subnet: '10.82.0.0/24' }] } });
    await until('comeback on host 3', () => names(h3).includes('comeback'));
    const sb = await h3.controller.createSandbox({ name: 'returner', networks: [{ network: 'comeback' }] });
    await until('host 1 sees the remote endpoint', () => (h1.controller.getNetwork('comeback').peers?.length ?? 0) === 1);
    await h3.crash();
    await until('host 3 gone on host 1', () => (h1.controller.getNetwork('comeback').peers?.length ?? 1) === 0, 30_000);
    // Host 3's registration key is back, but host 1 has not taken it in (its membership view ignores a
    // record it cannot parse: here, deterministically, "a registration it has not heard of yet"). Only
    // the transaction's check that the registration is still absent can refuse now.
    await h1.shared.put('hosts/host-3', 'not yet seen');
    await rejects(h1.controller.removeNetwork('comeback'), 403, /has active endpoints \(host host-3 registered again\)/);
    assert.ok(await h1.shared.get(`cnm/v1/endpoints/${sb.endpoints[0]!.endpoint.id}`), 'its record stays');
    assert.ok(names(h1).includes('comeback'));
  });

  it('etcd down: global mutations 503, local ones work, nothing torn down; etcd back: converges', { timeout: TIMEOUT }, async () => {
    const hs = await threeHosts();
    const [h1, h2] = hs as [ClusterHost, ClusterHost, ClusterHost];
    const { id } = await h1.controller.createNetwork({ name: 'down', driver: 'gtest', ipam: { configs: [{ subnet: '10.85.0.0/24' }] } });
    await until('down on host 2', () => names(h2).includes('down'));
    const sb = await h1.controller.createSandbox({ name: 'keep', networks: [{ network: 'down' }] });
    const epId = sb.endpoints[0]!.endpoint.id;
    await until('host 2 has the peer', () => (h2.driver.peers.get(id) ?? []).length === 1);

    await etcd().stop(0);
    try {
      await rejects(h1.controller.createNetwork({ name: 'down2', driver: 'gtest', ipam: { configs: [{ subnet: '10.86.0.0/24' }] } }), 503, /cluster store unreachable/);
      await rejects(h1.controller.createSandbox({ name: 'new', networks: [{ network: 'down' }] }), 503, /cluster store unreachable/);
      await rejects(h1.controller.disconnect('down', 'keep', false), 503, /cluster store unreachable/);
      await rejects(h1.controller.removeNetwork('down'), 403, /active endpoints/);
      // Local networks keep working.
      await h1.controller.createNetwork({ name: 'local-while-down', ipam: { configs: [{ subnet: '10.87.0.0/24' }] } });
      const local = await h1.controller.createSandbox({ name: 'local-sb', networks: [{ network: 'local-while-down' }] });
      assert.ok(local.endpoints[0]!.endpoint.ipv4Address);
      // Nothing that forwards was torn down: the endpoint is still joined, the peers still programmed.
      assert.ok(h1.driver.joined.has(epId));
      assert.equal((h2.driver.peers.get(id) ?? []).length, 1);
      assert.ok(!names(h1).includes('down2') && !names(h1).includes('new'));
      assert.equal(h1.controller.getSandbox('keep').endpoints.length, 1);
    } finally {
      await etcd().restart(0);
    }
    // Back: global mutations work again and the other hosts follow.
    await h2.controller.createNetwork({ name: 'after', driver: 'gtest', ipam: { configs: [{ subnet: '10.88.0.0/24' }] } });
    await until('after on host 1', () => names(h1).includes('after'));
    await h1.controller.disconnect('down', 'keep', false);
    await until('peer withdrawn on host 2', () => (h2.driver.peers.get(id) ?? []).length === 0);
  });

  it('a restarted host republishes its endpoints (and their network) that etcd lost', { timeout: TIMEOUT }, async () => {
    const hs = await threeHosts();
    const [h1, h2] = hs as [ClusterHost, ClusterHost, ClusterHost];
    const { id } = await h1.controller.createNetwork({ name: 'lost', driver: 'gtest', ipam: { configs: [{ subnet: '10.89.0.0/24' }] } });
    await until('lost on host 2', () => names(h2).includes('lost'));
    const sb = await h1.controller.createSandbox({ name: 'survivor', networks: [{ network: 'lost' }] });
    const ep = sb.endpoints[0]!.endpoint;
    await until('host 2 has the peer', () => (h2.driver.peers.get(id) ?? []).length === 1);

    // etcd loses the records (a restore from an old backup): h1 is down meanwhile.
    await h1.stop();
    await h2.shared.txn([
      { op: 'delete', key: `cnm/v1/networks/${id}` },
      { op: 'delete', key: 'cnm/v1/names/networks/lost' },
      { op: 'delete', key: `cnm/v1/endpoints/${ep.id}` },
      { op: 'delete', key: `cnm/v1/ipam/addresses/10.89.0.0_24/${ep.ipv4Address!.split('/')[0]}` },
    ]);
    await until('lost gone on host 2', () => !names(h2).includes('lost'));
    const back = await h1.restart();
    adopt(back);
    assert.ok((await back.shared.get(`cnm/v1/networks/${id}`)) !== undefined, 'network republished');
    const rec = await back.shared.get(`cnm/v1/endpoints/${ep.id}`);
    assert.ok(rec, 'endpoint republished');
    assert.equal(JSON.parse(rec.value).hostId, 'host-1');
    assert.ok(await back.shared.get(`cnm/v1/ipam/addresses/10.89.0.0_24/${ep.ipv4Address!.split('/')[0]}`), 'address claimed again');
    assert.equal(back.controller.getSandbox('survivor').endpoints[0]!.endpoint.ipv4Address, ep.ipv4Address);
    await until('host 2 learns it again with its peer', () => names(h2).includes('lost') && (h2.driver.peers.get(id) ?? []).length === 1);
  });
});
