/** The control plane against the recording kernel: lifecycle, validation, rollback, restart. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { httpStatusOf, KernelError } from '../../src/errors.js';
import { DEFAULT_OWNER_GROUP } from '../../src/kernel/types.js';

async function rejects(p: Promise<unknown>, status: number, match?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(httpStatusOf(err), status, `status of ${(err as Error).message}`);
    if (match) assert.match((err as Error).message, match);
    return true;
  });
}

describe('controller', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.cleanup());

  it('creates the predefined networks with a bridge for "bridge"', async () => {
    const names = h.controller.listNetworks().map((n) => n.network.name).sort();
    assert.deepEqual(names, ['bridge', 'host', 'none']);
    const bridge = h.controller.getNetwork('bridge').network;
    assert.equal(bridge.predefined, true);
    const link = await h.kernel.linkGet(null, 'cnm0');
    assert.equal(link?.kind, 'bridge');
    assert.equal(link?.up, true);
    const addrs = (await h.kernel.addrList(null, 'cnm0')).map((a) => a.cidr);
    assert.deepEqual(addrs, [`${bridge.ipam.pools[0]!.gateway}/24`]);
    assert.ok(h.firewall.networks.has(bridge.id));
  });

  it('creates a network with a subnet and rejects bad input without changing anything', async () => {
    const { id } = await h.controller.createNetwork({ name: 'neta', ipam: { configs: [{ subnet: '10.20.0.0/24' }] } });
    const net = h.controller.getNetwork('neta').network;
    assert.equal(net.id, id);
    assert.equal(h.controller.getNetwork(id.slice(0, 6)).network.name, 'neta');
    assert.deepEqual(net.ipam.pools.map((p) => [p.subnet, p.gateway]), [['10.20.0.0/24', '10.20.0.1']]);
    const before = { nets: h.controller.listNetworks().length, links: (await h.kernel.linkList(null)).length };

    await rejects(h.controller.createNetwork({ name: 'neta' }), 409, /already exists/);
    await rejects(h.controller.createNetwork({ name: 'bridge' }), 403);
    await rejects(h.controller.createNetwork({ name: 'bad name' }), 400);
    await rejects(h.controller.createNetwork({ name: 'x1', ipam: { configs: [{ subnet: '10.20.0.128/25' }] } }), 403, /overlap/i);
    await rejects(h.controller.createNetwork({ name: 'x2', driver: 'nosuch' }), 404);
    await rejects(h.controller.createNetwork({ name: 'x3', options: { 'com.docker.network.bridge.enable_icc': 'maybe' } }), 400);
    await rejects(h.controller.createNetwork({ name: 'x4', options: { 'com.docker.network.bridge.typo': '1' } }), 400);
    await rejects(h.controller.createNetwork({ name: 'x5', driver: 'host' }), 403);
    await rejects(h.controller.createNetwork({ name: 'x6', ipam: { configs: [{ subnet: '10.99.0.0/24', gateway: '10.98.0.1' }] } }), 400);
    await rejects(h.controller.createNetwork({ name: 'x7', ipam: { configs: [{ subnet: 'fd00::/64' }] } }), 400, /IPv6/);

    assert.equal(h.controller.listNetworks().length, before.nets);
    assert.equal((await h.kernel.linkList(null)).length, before.links);
  });

  it('connects sandboxes: veth in the namespace, address, default route, hosts file', async () => {
    const a = await h.controller.createSandbox({ name: 'a', networks: [{ network: 'neta' }] });
    const b = await h.controller.createSandbox({ name: 'b', networks: [{ network: 'neta', aliases: ['bee'] }] });
    const epA = a.endpoints[0]!.endpoint;
    const epB = b.endpoints[0]!.endpoint;
    assert.equal(epA.ipv4Address, '10.20.0.2/24');
    assert.equal(epB.ipv4Address, '10.20.0.3/24');
    assert.deepEqual(epB.aliases, ['bee']);
    const ns = a.sandbox.netnsPath;
    assert.ok(await h.kernel.netnsExists(ns));
    const eth0 = await h.kernel.linkGet(ns, 'eth0');
    assert.equal(eth0?.kind, 'veth');
    assert.equal(eth0?.mac, epA.macAddress);
    assert.deepEqual((await h.kernel.addrList(ns, 'eth0')).map((x) => x.cidr), ['10.20.0.2/24']);
    const routes = await h.kernel.routeList(ns, 4);
    assert.ok(routes.some((r) => r.dst === 'default' && r.via === '10.20.0.1'), JSON.stringify(routes));
    const detail = h.controller.getNetwork('neta');
    assert.deepEqual(detail.endpoints.map((e) => e.sandbox.name).sort(), ['a', 'b']);
    await rejects(h.controller.connect({ network: 'neta', sandbox: 'a' }), 403, /already exists in network neta/);
    await rejects(h.controller.createSandbox({ name: 'a' }), 409);
  });

  it('gives a sandbox a second interface and moves the default route by GwPriority', async () => {
    await h.controller.createNetwork({ name: 'netb', ipam: { configs: [{ subnet: '10.30.0.0/24' }] } });
    const ep = await h.controller.connect({ network: 'netb', sandbox: 'b' });
    assert.equal(ep.ifName, 'eth1');
    const ns = h.controller.getSandbox('b').sandbox.netnsPath;
    let def = (await h.kernel.routeList(ns, 4)).find((r) => r.dst === 'default');
    assert.equal(def?.via, '10.20.0.1', 'ties go to the network name that sorts first');
    await h.controller.disconnect('netb', 'b', false);
    assert.equal(await h.kernel.linkGet(ns, 'eth1'), undefined);
    await h.controller.connect({ network: 'netb', sandbox: 'b', gwPriority: 10 });
    def = (await h.kernel.routeList(ns, 4)).find((r) => r.dst === 'default');
    assert.equal(def?.via, '10.30.0.1');
  });

  it('handles static addresses: taken → 403, outside → 400', async () => {
    const c = await h.controller.createSandbox({ name: 'c', networks: [{ network: 'netb', ipv4Address: '10.30.0.50' }] });
    assert.equal(c.endpoints[0]!.endpoint.ipv4Address, '10.30.0.50/24');
    await rejects(h.controller.createSandbox({ name: 'cx2', networks: [{ network: 'netb', ipv4Address: '10.30.0.50' }] }), 403, /in use/);
    await rejects(h.controller.createSandbox({ name: 'c3', networks: [{ network: 'netb', ipv4Address: '10.31.0.5' }] }), 400);
    assert.throws(() => h.controller.getSandbox('cx2'), /No such sandbox/);
    await h.controller.disconnect('netb', 'c', false);
    const again = await h.controller.connect({ network: 'netb', sandbox: 'c' });
    assert.notEqual(again.ipv4Address, '10.30.0.50/24');
  });

  it('a released dynamic address is not reused at once, though first-fit would hand it out next', async () => {
    await h.controller.createNetwork({ name: 'netd', ipam: { configs: [{ subnet: '10.32.0.0/24' }] } });
    const e = await h.controller.createSandbox({ name: 'reuse-e', networks: [{ network: 'netd' }] });
    const f = await h.controller.createSandbox({ name: 'reuse-f', networks: [{ network: 'netd' }] });
    assert.equal(e.endpoints[0]!.endpoint.ipv4Address, '10.32.0.2/24');
    assert.equal(f.endpoints[0]!.endpoint.ipv4Address, '10.32.0.3/24');
    await h.controller.disconnect('netd', 'reuse-e', false);
    // .1 is the gateway and .3 is taken: .2 is now the lowest free address, what first-fit would return.
    const inUse = h.controller.getNetwork('netd').endpoints.map((x) => x.endpoint.ipv4Address);
    assert.deepEqual(inUse, ['10.32.0.3/24']);
    const again = await h.controller.connect({ network: 'netd', sandbox: 'reuse-e' });
    assert.equal(again.ipv4Address, '10.32.0.4/24', 'next-fit continues after the last address handed out');
    for (const name of ['reuse-e', 'reuse-f']) await h.controller.removeSandbox(name, true);
    await h.controller.removeNetwork('netd');
  });

  it('refuses to remove a network with endpoints, then removes it and its bridge', async () => {
    await rejects(h.controller.removeNetwork('netb'), 403, /has active endpoints/);
    await h.controller.disconnect('netb', 'b', false);
    await h.controller.disconnect('netb', 'c', false);
    const id = h.controller.getNetwork('netb').network.id;
    await h.controller.removeNetwork('netb');
    assert.equal(await h.kernel.linkGet(null, `cnm-${id.slice(0, 11)}`), undefined);
    assert.ok(!h.firewall.networks.has(id));
    await rejects(h.controller.removeNetwork('netb'), 404);
    await rejects(h.controller.removeNetwork('bridge'), 403);
  });

  it('a full bridge (EXFULL) is a clear error and the connect leaves nothing behind', async () => {
    await h.controller.createNetwork({ name: 'fullnet' });
    await h.controller.createSandbox({ name: 'wantsfull' });
    const links = (await h.kernel.linkList(null)).length;
    h.kernel.failNext('linkAdd', new KernelError('linkAdd cnmvx: EXFULL', 'EXFULL'));
    await rejects(h.controller.connect({ network: 'fullnet', sandbox: 'wantsfull' }), 500, /network fullnet is full: a Linux bridge takes at most 1,024 endpoints/);
    assert.equal(h.controller.getNetwork('fullnet').endpoints.length, 0);
    assert.equal((await h.kernel.linkList(null)).length, links);
    await h.controller.connect({ network: 'fullnet', sandbox: 'wantsfull' });
    assert.equal(h.controller.getNetwork('fullnet').endpoints.length, 1);
  });

  it('internal networks give no default route', async () => {
    await h.controller.createNetwork({ name: 'inner', internal: true });
    const s = await h.controller.createSandbox({ name: 'inside', networks: [{ network: 'inner' }] });
    const routes = await h.kernel.routeList(s.sandbox.netnsPath, 4);
    assert.equal(routes.find((r) => r.dst === 'default'), undefined);
    assert.equal(h.firewall.networks.get(h.controller.getNetwork('inner').network.id)?.internal, true);
  });

  it('host and none sandboxes', async () => {
    const hs = await h.controller.createSandbox({ name: 'onhost', networks: [{ network: 'host' }] });
    assert.equal(hs.sandbox.hostNetwork, true);
    await rejects(h.controller.connect({ network: 'neta', sandbox: 'onhost' }), 403);
    const none = await h.controller.createSandbox({ name: 'alone', networks: [{ network: 'none' }] });
    assert.deepEqual((await h.kernel.linkList(none.sandbox.netnsPath)).map((l) => l.name), ['lo']);
    await rejects(h.controller.connect({ network: 'neta', sandbox: 'alone' }), 403);
  });

  it('allocates distinct addresses under concurrent connects', async () => {
    await h.controller.createNetwork({ name: 'busy', ipam: { configs: [{ subnet: '10.40.0.0/24' }] } });
    const sandboxes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => h.controller.createSandbox({ name: `p${i}`, networks: [{ network: 'busy' }] })),
    );
    const ips = sandboxes.map((s) => s.endpoints[0]!.endpoint.ipv4Address);
    assert.equal(new Set(ips).size, 40);
    await Promise.all(sandboxes.map((s) => h.controller.removeSandbox(s.sandbox.id, false)));
    assert.equal(h.controller.getNetwork('busy').endpoints.length, 0);
  });

  it('prunes unused networks only', async () => {
    await h.controller.createNetwork({ name: 'unused1', labels: { keep: 'no' } });
    const removed = await h.controller.pruneNetworks((n) => n.labels.keep === 'no');
    assert.deepEqual(removed, ['unused1']);
    assert.ok(h.controller.getNetwork('neta'));
  });

  it('restart: intact endpoints untouched, broken ones rejoined, leaks removed', async () => {
    const before = h.controller.getSandbox('a');
    const ns = before.sandbox.netnsPath;
    // Break b's veth and leave a leaked cnm link behind, as a crash might.
    const bVeth = `cnmv${h.controller.getSandbox('b').endpoints[0]!.endpoint.id.slice(0, 11)}`;
    await h.kernel.linkDel(null, bVeth);
    await h.kernel.linkAdd(null, { kind: 'dummy', name: 'cnmvleaked0', group: DEFAULT_OWNER_GROUP });
    // Named like cnm's but without the owner mark: an administrator's, never touched.
    await h.kernel.linkAdd(null, { kind: 'dummy', name: 'cnmvadmin0' });
    await h.kernel.linkAdd(null, { kind: 'bridge', name: 'cnm-admin0' });
    const h2 = await h.restart();
    assert.deepEqual(h2.controller.getSandbox('a').endpoints.map((e) => e.endpoint.ipv4Address), ['10.20.0.2/24']);
    assert.ok(await h2.kernel.linkGet(null, bVeth), 'b rejoined');
    assert.ok(await h2.kernel.linkGet(h2.controller.getSandbox('b').sandbox.netnsPath, 'eth0'));
    assert.equal(await h2.kernel.linkGet(null, 'cnmvleaked0'), undefined);
    assert.ok(await h2.kernel.linkGet(null, 'cnmvadmin0'), 'an unmarked link survives');
    assert.ok(await h2.kernel.linkGet(null, 'cnm-admin0'), 'an unmarked bridge survives');
    assert.ok(await h2.kernel.linkGet(ns, 'eth0'));
    // IPAM state survived: a new sandbox does not get a taken address.
    const d = await h2.controller.createSandbox({ name: 'd', networks: [{ network: 'neta' }] });
    assert.equal(d.endpoints[0]!.endpoint.ipv4Address, '10.20.0.4/24');
  });

  it('restart: a sandbox whose adopted namespace vanished is forgotten with its endpoints', async () => {
    // A fresh controller on the shared store: the previous test's restarted daemon allocated addresses too.
    const h1 = await h.restart();
    await h1.kernel.createNetns('/adopted/ns1');
    const s = await h1.controller.createSandbox({ name: 'adoptee', netnsPath: '/adopted/ns1', networks: [{ network: 'neta' }] });
    const veth = `cnmv${s.endpoints[0]!.endpoint.id.slice(0, 11)}`;
    assert.equal(s.sandbox.adopted, true);
    // Vanished (as after a reboot): the given path and cnm's pin of it.
    await h1.kernel.deleteNetns('/adopted/ns1');
    await h1.kernel.deleteNetns(s.sandbox.netnsPath);
    const h2 = await h1.restart();
    assert.throws(() => h2.controller.getSandbox('adoptee'), /No such sandbox/);
    assert.ok(!h2.controller.getNetwork('neta').endpoints.some((e) => e.sandbox.name === 'adoptee'));
    assert.equal(await h2.kernel.linkGet(null, veth), undefined);
  });
});
