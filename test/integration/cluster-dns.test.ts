/**
 * Names across hosts: the embedded DNS of a sandbox on a global network answers the names (sandbox name,
 * aliases, short ID; A, AAAA and PTR) of sandboxes on the other hosts on the same network, and stops when
 * they disconnect or their host's lease expires. Three controllers on a real etcd, each with the real
 * DnsRegistry behind its service discovery (the DNS server's sockets recorded).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { threeHostsOnEtcd, until, type ClusterHost } from '../helpers/cluster-hosts.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));
const TIMEOUT = 180_000;
const bare = (cidr: string | undefined) => cidr?.split('/')[0] ?? '';

describe('embedded DNS names across hosts (three controllers, real etcd)', { skip }, () => {
  const { threeHosts, adopt } = threeHostsOnEtcd();
  const has = (h: ClusterHost, name: string) => h.controller.listNetworks().some((n) => n.network.name === name);

  it('answers remote names (A, AAAA, PTR, aliases) and drops them on disconnect and on lease expiry', { timeout: TIMEOUT }, async () => {
    const [h1, h2, h3] = await threeHosts(3);
    await h1.controller.createNetwork({
      name: 'gdns',
      driver: 'gtest',
      enableIPv6: true,
      ipam: { configs: [{ subnet: '10.91.0.0/24' }, { subnet: 'fd91::/64' }] },
    });
    await h1.controller.createNetwork({ name: 'other', driver: 'gtest', ipam: { configs: [{ subnet: '10.92.0.0/24' }] } });
    for (const h of [h2, h3]) await until(`networks on ${h.id}`, () => has(h, 'gdns') && has(h, 'other'));
    const a = await h1.controller.createSandbox({ name: 'a', networks: [{ network: 'gdns' }] });
    const a2 = await h1.controller.createSandbox({ name: 'a2', networks: [{ network: 'gdns' }] });
    const b = await h2.controller.createSandbox({ name: 'b', networks: [{ network: 'gdns', aliases: ['web'] }] });
    const c = await h3.controller.createSandbox({ name: 'c', networks: [{ network: 'gdns' }] });
    const d = await h3.controller.createSandbox({ name: 'd', networks: [{ network: 'other' }] });
    const ep = (s: typeof a) => s.endpoints[0]!.endpoint;
    const reg = h1.dns.registry;
    const v4 = (name: string) => reg.resolve(a.sandbox.id, name, 'A').addresses;

    await until('b and c resolve on host 1', () => v4('b').length === 1 && v4('c').length === 1);
    assert.deepEqual(v4('b'), [bare(ep(b).ipv4Address)]);
    assert.deepEqual(v4('web'), [bare(ep(b).ipv4Address)], 'the alias given on host 2');
    assert.deepEqual(v4(b.sandbox.id.slice(0, 12)), [bare(ep(b).ipv4Address)], 'the short ID');
    assert.deepEqual(v4('c.gdns'), [bare(ep(c).ipv4Address)], 'name.network');
    assert.deepEqual(reg.resolve(a.sandbox.id, 'c', 'AAAA').addresses, [bare(ep(c).ipv6Address)]);
    assert.ok(ep(c).ipv6Address, 'c has an IPv6 address');
    assert.deepEqual(reg.reverse(a.sandbox.id, bare(ep(c).ipv4Address)), ['c.gdns']);
    assert.deepEqual(reg.reverse(a.sandbox.id, bare(ep(c).ipv6Address)), ['c.gdns']);
    // Only names on networks the asker is on: d is on another global network.
    assert.deepEqual(v4('d'), []);
    assert.equal(reg.resolve(a.sandbox.id, 'd', 'A').authoritative, false);
    // ...which d itself, on host 3, does not see b on either, while c (same host) does.
    assert.deepEqual(h3.dns.resolve(d.sandbox.id, 'b'), []);
    await until('b resolves on host 3', () => h3.dns.resolve(c.sandbox.id, 'b').length === 1);
    // Host 2 sees host 1's two sandboxes.
    await until('a and a2 on host 2', () => h2.dns.resolve(b.sandbox.id, 'a').length === 1 && h2.dns.resolve(b.sandbox.id, 'a2').length === 1);

    // Disconnect on host 2: b and its alias go on host 1; c and the local a2 still answer.
    await h2.controller.disconnect('gdns', 'b', false);
    await until('b gone on host 1', () => v4('b').length === 0);
    assert.deepEqual(v4('web'), []);
    assert.deepEqual(reg.reverse(a.sandbox.id, bare(ep(b).ipv4Address)), []);
    assert.deepEqual(v4('c'), [bare(ep(c).ipv4Address)], 'c still answered');
    assert.deepEqual(v4('a2'), [bare(ep(a2).ipv4Address)], 'a local name still answered');
    // Connected again: b answers again (with the address it has now).
    const b2 = await h2.controller.connect({ network: 'gdns', sandbox: 'b', aliases: ['web2'] });
    await until('b back on host 1', () => v4('b').length === 1);
    assert.deepEqual(v4('b'), [bare(b2.ipv4Address)]);
    assert.deepEqual(v4('web2'), [bare(b2.ipv4Address)]);

    // Host 3 dies (TTL 3 s): its record stays in etcd, but its lease expires and its names go.
    await h3.crash();
    await until('c gone on host 1', () => v4('c').length === 0);
    assert.deepEqual(reg.resolve(a.sandbox.id, 'c', 'AAAA').addresses, []);
    assert.deepEqual(reg.reverse(a.sandbox.id, bare(ep(c).ipv4Address)), []);
    await until('c gone on host 2', () => h2.dns.resolve(b.sandbox.id, 'c').length === 0);
    assert.equal((await h1.shared.list('cnm/v1/endpoints/')).length, 5, "the dead host's records stay in etcd");
    assert.deepEqual(v4('b'), [bare(b2.ipv4Address)], 'host 2 still answered');
    assert.deepEqual(v4('a2'), [bare(ep(a2).ipv4Address)], 'a local name still answered');
  });

  it('a restarted host answers the remote names again from the cluster store', { timeout: TIMEOUT }, async () => {
    const [h1, h2] = await threeHosts(10);
    await h1.controller.createNetwork({ name: 'gdns2', driver: 'gtest', ipam: { configs: [{ subnet: '10.93.0.0/24' }] } });
    await until('gdns2 on host 2', () => has(h2, 'gdns2'));
    const a = await h1.controller.createSandbox({ name: 'ra', networks: [{ network: 'gdns2' }] });
    const b = await h2.controller.createSandbox({ name: 'rb', networks: [{ network: 'gdns2' }] });
    await until('rb on host 1', () => h1.dns.resolve(a.sandbox.id, 'rb').length === 1);
    const back = await h1.restart();
    adopt(back);
    // The new controller's registry is empty until the start-up (snapshot + forced sync) fills it.
    await until('rb on restarted host 1', () => back.dns.resolve(a.sandbox.id, 'rb').length === 1);
    assert.deepEqual(back.dns.resolve(a.sandbox.id, 'rb'), [bare(b.endpoints[0]!.endpoint.ipv4Address)]);
    assert.deepEqual(back.dns.resolve(a.sandbox.id, 'ra'), [bare(a.endpoints[0]!.endpoint.ipv4Address)], 'the local name too');
  });
});
