/**
 * The plugin door's global networks on a real etcd, two controllers ("hosts": recording kernel, the
 * recording global driver) in this process: each host's runtime has its own network ID; the second
 * host's CreateNetwork of the same name finds the first host's network and records its ID as an alias.
 * The runtime's endpoints are published cluster-wide (the other host gets them as peers; an address
 * the other host holds is refused), survive a restart of their host, and an alias's DeleteNetwork only
 * drops the alias.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { httpStatusOf } from '../../src/errors.js';
import type { CreateNetworkRequest } from '../../src/controller/types.js';
import { startClusterHost, until, type ClusterHost } from '../helpers/cluster-hosts.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;
const D1 = '1'.repeat(63) + 'a';
const D2 = '2'.repeat(63) + 'b';
const E1 = 'e'.repeat(63) + '1';
const E2 = 'e'.repeat(63) + '2';

async function rejects(p: Promise<unknown>, status: number, match: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(httpStatusOf(err), status, `status of ${(err as Error).message}`);
    assert.match((err as Error).message, match);
    return true;
  });
}

function request(id: string, subnet = '10.94.0.0/24', nameGiven = true): CreateNetworkRequest & { id: string } {
  return {
    id, name: 'gh', driver: 'gtest', forHandoff: true, ...(nameGiven ? { nameGiven } : {}),
    enableIPv4: true, ipam: { configs: [{ subnet, gateway: subnet.replace('0/24', '1'), ipRange: subnet.replace('0/24', '128/25') }] },
  };
}

describe('the Docker plugin door on global networks (two controllers, real etcd)', { skip }, () => {
  let etcd: EtcdCluster;
  let h1: ClusterHost;
  let h2: ClusterHost;
  before(async () => {
    etcd = await startEtcdCluster(1);
    const prefix = `/cnmt/${randomBytes(4).toString('hex')}/`;
    [h1, h2] = await Promise.all([1, 2].map((i) => startClusterHost({ endpoints: etcd.endpoints, prefix, hostId: `host-${i}`, advertiseAddr: `192.0.2.${i}` })));
    for (const h of [h1, h2]) await until(`${h.id} sees 2 hosts`, async () => (await h.shared.list('hosts/')).length === 2);
  });
  after(async () => {
    for (const h of [h1, h2]) await h?.destroy().catch(() => {});
    await etcd?.close();
  });

  it('one network for two runtime IDs; endpoints published both ways, addresses unique; a restart keeps them; an alias rm drops the alias only', { timeout: TIMEOUT }, async () => {
    await rejects(h1.controller.createHandoffNetwork(request(D1, '10.94.0.0/24', false)), 400, /-o cnm\.name=NAME/);
    assert.equal((await h1.controller.createHandoffNetwork(request(D1))).id, D1);
    // Host 2, at once (its watch may not have brought the network yet): the same network, D2 an alias of it.
    await rejects(h2.controller.createHandoffNetwork(request(D2, '10.95.0.0/24')), 409, /already exists with subnet 10\.94\.0\.0\/24, not 10\.95\.0\.0\/24/);
    assert.equal((await h2.controller.createHandoffNetwork(request(D2))).id, D1);
    assert.deepEqual(h2.controller.listNetworks().filter((n) => n.network.name === 'gh').map((n) => n.network.id), [D1]);

    await h1.controller.createAttachment({ networkId: D1, endpointId: E1, owner: 'docker', ipv4Address: '10.94.0.2/24' });
    await h1.controller.joinAttachment(D1, E1, '/x');
    // Docker's IPAM on host 2 hands out .2 as well: refused, it is host 1's.
    await rejects(h2.controller.createAttachment({ networkId: D2, endpointId: E2, owner: 'docker', ipv4Address: '10.94.0.2/24' }), 403, /^Address already in use: 10\.94\.0\.2 is taken on network gh .*--ip-range/);
    const att2 = await h2.controller.createAttachment({ networkId: D2, endpointId: E2, owner: 'docker', ipv4Address: '10.94.0.65/24' });
    assert.equal(att2.networkId, D1);
    assert.equal((await h2.controller.joinAttachment(D2, E2, '/y')).srcName, `gtest${E2.slice(0, 8)}`);
    const att1 = h1.controller.getAttachment(D1, E1);
    await until('host 1 has host 2\'s container as a peer', () => JSON.stringify(h1.driver.peers.get(D1)) === JSON.stringify([{ mac: att2.macAddress, ips: ['10.94.0.65'], vtep: '192.0.2.2' }]));
    await until('host 2 has host 1\'s container as a peer', () => JSON.stringify(h2.driver.peers.get(D1)) === JSON.stringify([{ mac: att1.macAddress, ips: ['10.94.0.2'], vtep: '192.0.2.1' }]));
    // cnm's own sandbox on host 2 gets neither address.
    const sb = await h2.controller.createSandbox({ name: 's2', networks: [{ network: 'gh' }] });
    assert.equal(sb.endpoints[0]!.endpoint.ipv4Address, '10.94.0.128/24');

    // Host 2 restarts: its container's endpoint stays published (and its alias known).
    h2 = await h2.restart();
    assert.equal(h2.controller.getAttachment(D2, E2).ipv4Address, '10.94.0.65/24');
    assert.ok(await h2.shared.get(`cnm/v1/endpoints/${E2}`), 'the endpoint record is still in etcd');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(await h2.shared.get(`cnm/v1/endpoints/${E2}`), 'and stays there');
    assert.ok(h1.driver.peers.get(D1)?.some((p) => p.mac === att2.macAddress), 'host 1 still has it as a peer');

    // Docker on host 2 removes its endpoint and its network: the alias goes, the network stays.
    await h2.controller.removeAttachment(D2, E2);
    await until('host 1 withdrew host 2\'s container', () => !h1.driver.peers.get(D1)?.some((p) => p.mac === att2.macAddress));
    const claims = (await h2.shared.list('cnm/v1/ipam/addresses/')).map((e) => e.key.slice(e.key.lastIndexOf('/') + 1));
    assert.ok(claims.includes('10.94.0.2') && !claims.includes('10.94.0.65'), `its address claim went with it: ${claims}`);
    await h2.controller.removeSandbox('s2', true);
    await h2.controller.removeNetworkById(D2);
    await h2.controller.removeNetworkById(D2);
    assert.equal(h2.controller.getNetwork('gh').network.id, D1, 'still there on host 2');
    assert.throws(() => h2.controller.getAttachment(D2, E2), /not found/);
    // Host 1's runtime removes it: gone everywhere.
    await h1.controller.removeNetworkById(D1);
    await until('host 2 forgot gh', () => !h2.controller.listNetworks().some((n) => n.network.name === 'gh'));
  });
});
