/**
 * VIP services on a global network, control plane: three controllers on a real etcd, each with the
 * recording kernel, the recording global driver (which, like the overlay, balances VIPs in the sandboxes),
 * a recording sandbox balancer and the real DNS registry. The service's record, name and VIP claims are in
 * the cluster store (not in any host's local store); every host learns it; the balancing table of a client
 * sandbox on host 1 holds the backends of hosts 2 and 3 and follows a disconnect, a host's lease expiry and
 * the service's removal on another host; names (NAME, tasks.NAME) answer on every host; a restart brings it
 * all back from the cluster store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keys } from '../../src/controller/repository.js';
import { httpStatusOf } from '../../src/errors.js';
import { threeHostsOnEtcd, until, type ClusterHost } from '../helpers/cluster-hosts.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;
const bare = (cidr: string | undefined) => cidr?.split('/')[0] ?? '';

describe('VIP services on a global network (three controllers, real etcd)', { skip }, () => {
  const { threeHosts, adopt } = threeHostsOnEtcd();
  const knows = (h: ClusterHost, svc: string) => h.controller.listServices().some((s) => s.service.name === svc);
  const netnsOf = (h: ClusterHost, sb: string) => h.controller.getSandbox(sb).sandbox.netnsPath;
  const sameSet = (a: string[] | undefined, b: string[]) => a !== undefined && [...a].sort().join() === [...b].sort().join();

  it('record and claims in etcd; backends of two hosts balanced on the third; disconnect, lease expiry, removal elsewhere', { timeout: TIMEOUT }, async () => {
    const [h1, h2, h3] = await threeHosts(3);
    await h1.controller.createNetwork({ name: 'gsvc', driver: 'gtest', ipam: { configs: [{ subnet: '10.95.0.0/24' }] } });
    for (const h of [h2, h3]) await until(`gsvc on ${h.id}`, () => h.controller.listNetworks().some((n) => n.network.name === 'gsvc'));

    const web = (await h1.controller.createService({ name: 'web', network: 'gsvc' })).service;
    const vip = bare(web.vip);
    assert.match(vip, /^10\.95\.0\.\d+$/);
    // One record, its name and its VIP's claim, in the cluster store; nothing in host 1's local store.
    assert.equal((await h1.shared.get(keys.service(web.id)))?.value, JSON.stringify(web));
    assert.equal((await h1.shared.get(keys.serviceName('web')))?.value, web.id);
    assert.equal((await h1.shared.get(keys.address(web.vipPoolId!, vip)))?.value, web.id);
    assert.equal(await h1.local.get(keys.service(web.id)), undefined);
    for (const h of [h2, h3]) await until(`web known on ${h.id}`, () => knows(h, 'web'));
    assert.equal(h3.controller.getService('web').service.vip, web.vip, 'the same VIP on every host');
    // The name is cluster-wide: host 2 cannot make another "web"; two hosts making services at once get two VIPs.
    await assert.rejects(h2.controller.createService({ name: 'web', network: 'gsvc' }), /already exists/);
    const [a2, a3] = await Promise.all([
      h2.controller.createService({ name: 'api2', network: 'gsvc' }),
      h3.controller.createService({ name: 'api3', network: 'gsvc' }),
    ]);
    assert.equal(new Set([vip, bare(a2.service.vip), bare(a3.service.vip)]).size, 3, 'three distinct VIPs');

    const c1 = await h1.controller.createSandbox({ name: 'c1', networks: [{ network: 'gsvc' }] });
    const b2 = await h2.controller.createSandbox({ name: 'b2', networks: [{ network: 'gsvc', services: ['web'] }] });
    const b3 = await h3.controller.createSandbox({ name: 'b3', networks: [{ network: 'gsvc', services: ['web'] }] });
    const ip = (s: typeof c1) => bare(s.endpoints[0]!.endpoint.ipv4Address);
    const at1 = () => h1.balancer.backendsAt(netnsOf(h1, 'c1'), vip);

    // Host 1's client balances over the backends of hosts 2 and 3; so does backend b2 on host 2.
    await until('c1 balances over b2 and b3', () => sameSet(at1(), [ip(b2), ip(b3)]));
    await until('b2 balances over b2 and b3', () => sameSet(h2.balancer.backendsAt(netnsOf(h2, 'b2'), vip), [ip(b2), ip(b3)]));
    assert.equal(h1.firewall.services.size, 0, "the host's own nftables carries no VIP of a network it has no path onto");
    assert.deepEqual(h1.dns.resolve(c1.sandbox.id, 'web'), [vip]);
    await until('tasks.web on host 1', () => sameSet(h1.dns.resolve(c1.sandbox.id, 'tasks.web'), [ip(b2), ip(b3)]));
    const backends = h1.controller.getService('web').backends.map((b) => `${b.sandbox.name}@${b.endpoint.hostId}`).sort();
    assert.deepEqual(backends, ['b2@host-2', 'b3@host-3']);

    // A disconnect on host 2 takes b2 out on host 1 (and on host 3); b3 stays.
    await h2.controller.disconnect('gsvc', 'b2', false);
    await until('c1 balances over b3 only', () => sameSet(at1(), [ip(b3)]));
    await until('tasks.web without b2', () => sameSet(h1.dns.resolve(c1.sandbox.id, 'tasks.web'), [ip(b3)]));
    await until('b3 balances over itself only', () => sameSet(h3.balancer.backendsAt(netnsOf(h3, 'b3'), vip), [ip(b3)]));
    assert.equal(h2.balancer.tables.has(netnsOf(h2, 'b2')), false, 'b2 balances nothing once off the network');

    // Host 3 dies: once its lease expires (TTL 3 s) its backend is out everywhere, its record still in etcd.
    await h3.crash();
    await until('c1 balances over nobody', () => sameSet(at1(), []));
    await until('tasks.web empty', () => h1.dns.resolve(c1.sandbox.id, 'tasks.web').length === 0);
    assert.deepEqual(h1.dns.resolve(c1.sandbox.id, 'web'), [vip], 'the VIP still answers');
    assert.ok(await h1.shared.get(keys.endpoint(b3.endpoints[0]!.endpoint.id)), "the dead host's record stays in etcd");

    // Removed on host 2: gone on host 1 too (table, name, listing), the claims with it.
    await h2.controller.removeService('web');
    await until('web forgotten on host 1', () => !knows(h1, 'web'));
    await until('c1 table without web', () => at1() === undefined);
    assert.deepEqual(h1.dns.resolve(c1.sandbox.id, 'web'), []);
    assert.equal(await h1.shared.get(keys.serviceName('web')), undefined);
    assert.equal(await h1.shared.get(keys.address(web.vipPoolId!, vip)), undefined);
    // The other services still balance in c1 (their VIPs, no backends).
    assert.deepEqual(h1.balancer.backendsAt(netnsOf(h1, 'c1'), bare(a2.service.vip)), []);
  });

  it('a restarted host gets the service and its remote backends back from the cluster store', { timeout: TIMEOUT }, async () => {
    const [h1, h2, h3] = await threeHosts(10);
    await h1.controller.createNetwork({ name: 'gsvc2', driver: 'gtest', ipam: { configs: [{ subnet: '10.96.0.0/24' }] } });
    for (const h of [h2, h3]) await until(`gsvc2 on ${h.id}`, () => h.controller.listNetworks().some((n) => n.network.name === 'gsvc2'));
    const web = (await h2.controller.createService({ name: 'web2', network: 'gsvc2' })).service;
    const vip = bare(web.vip);
    await until('web2 on host 1', () => knows(h1, 'web2'));
    const c1 = await h1.controller.createSandbox({ name: 'rc1', networks: [{ network: 'gsvc2' }] });
    const b2 = await h2.controller.createSandbox({ name: 'rb2', networks: [{ network: 'gsvc2', services: ['web2'] }] });
    const b2ip = bare(b2.endpoints[0]!.endpoint.ipv4Address);
    const path = c1.sandbox.netnsPath;
    await until('rc1 balances over rb2', () => sameSet(h1.balancer.backendsAt(path, vip), [b2ip]));

    h1.balancer.tables.clear(); // what a lost table would look like: the restart must put it back
    const back = await h1.restart();
    adopt(back);
    assert.ok(knows(back, 'web2'), 'known right after the start (snapshot)');
    assert.deepEqual(back.balancer.backendsAt(path, vip), [b2ip], 'the table is back with the remote backend');
    assert.deepEqual(back.dns.resolve(c1.sandbox.id, 'web2'), [vip]);
    assert.deepEqual(back.dns.resolve(c1.sandbox.id, 'tasks.web2'), [b2ip]);
    // A VIP is never handed out twice: an endpoint made on the restarted host gets another address.
    const c2 = await back.controller.createSandbox({ name: 'rc2', networks: [{ network: 'gsvc2' }] });
    assert.notEqual(bare(c2.endpoints[0]!.endpoint.ipv4Address), vip);
    // ...and it balances the service from its first connect.
    assert.deepEqual(back.balancer.backendsAt(c2.sandbox.netnsPath, vip), [b2ip]);
  });

  it('a connect whose sandbox cannot balance fails whole: no endpoint here or in etcd, no backend anywhere; bad requests change nothing', { timeout: TIMEOUT }, async () => {
    const [h1, h2] = await threeHosts(10);
    await h1.controller.createNetwork({ name: 'gsvc3', driver: 'gtest', ipam: { configs: [{ subnet: '10.97.0.0/24' }] } });
    await until('gsvc3 on host 2', () => h2.controller.listNetworks().some((n) => n.network.name === 'gsvc3'));
    const web = (await h1.controller.createService({ name: 'web3', network: 'gsvc3' })).service;
    const vip = bare(web.vip);
    await until('web3 on host 2', () => knows(h2, 'web3'));
    const c2 = await h2.controller.createSandbox({ name: 'fc2', networks: [{ network: 'gsvc3' }] });
    const s1 = await h1.controller.createSandbox({ name: 'fs1', networks: [] });
    const endpointsInEtcd = async () => (await h1.shared.list('cnm/v1/endpoints/')).length;
    const before = await endpointsInEtcd();
    h1.balancer.failFor.add(s1.sandbox.netnsPath);
    // As a plain client (it balances the network's VIPs itself) and as a backend (it balances too).
    await assert.rejects(h1.controller.connect({ network: 'gsvc3', sandbox: 'fs1' }), /balanc/);
    await assert.rejects(h1.controller.connect({ network: 'gsvc3', sandbox: 'fs1', services: ['web3'] }), /balanc/);
    assert.deepEqual(h1.controller.getSandbox('fs1').endpoints.map((e) => e.network.name), ['bridge'], 'only its default network');
    assert.equal(await endpointsInEtcd(), before, 'the endpoint record was withdrawn');
    assert.deepEqual(h1.controller.getService('web3').backends, []);
    // The same connect works once the sandbox can be programmed, and host 2 balances over it.
    h1.balancer.failFor.delete(s1.sandbox.netnsPath);
    const ep = await h1.controller.connect({ network: 'gsvc3', sandbox: 'fs1', services: ['web3'] });
    assert.equal(await endpointsInEtcd(), before + 1);
    assert.deepEqual(h1.balancer.backendsAt(s1.sandbox.netnsPath, vip), [bare(ep.ipv4Address)]);
    await until('host 2 balances over fs1', () => sameSet(h2.balancer.backendsAt(c2.sandbox.netnsPath, vip), [bare(ep.ipv4Address)]));

    // Bad requests: 4xx, nothing stored anywhere.
    const keysBefore = (await h1.shared.list('cnm/v1/')).map((e) => e.key).sort();
    await assert.rejects(h2.controller.createService({ name: 'web3', network: 'gsvc3' }), (err: unknown) => httpStatusOf(err) === 409);
    await assert.rejects(h2.controller.createService({ name: 'x', network: 'gsvc3', mode: 'vip', vipSubnet: '10.1.0.0/24' }), (err: unknown) => httpStatusOf(err) === 400);
    await assert.rejects(h2.controller.createService({ name: 'x', network: 'gsvc3', ports: ['99999'] }), (err: unknown) => httpStatusOf(err) === 400);
    await assert.rejects(h2.controller.removeNetwork('gsvc3'), (err: unknown) => httpStatusOf(err) === 403);
    assert.deepEqual((await h1.shared.list('cnm/v1/')).map((e) => e.key).sort(), keysBefore);
  });
});
