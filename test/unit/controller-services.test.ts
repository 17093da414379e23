/**
 * The controller's services against fast fakes: VIP allocation and release, what the firewall and the
 * DNS are told on every membership change, validation (nothing changes on bad input), rollback, restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, ForbiddenError, InvalidParameterError, NotFoundError } from '../../src/errors.js';
import { keys } from '../../src/controller/repository.js';
import { startHarness, type Harness } from '../helpers/controller-harness.js';

describe('controller services', () => {
  let h: Harness;
  const sbId = (name: string) => h.controller.getSandbox(name).sandbox.id;
  const ipOf = (name: string) => h.controller.getSandbox(name).endpoints[0]!.endpoint.ipv4Address!.split('/')[0]!;
  const fwBackends = (svc: string) => [...(h.firewall.services.get(h.controller.getService(svc).service.id)?.backends ?? [])].sort();

  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'app', ipam: { configs: [{ subnet: '10.70.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'other', ipam: { configs: [{ subnet: '10.71.0.0/24' }] } });
  });
  after(async () => h.cleanup());

  it('vip: a VIP from the network pool, on the bridge, in nftables with no backends, and in the DNS', async () => {
    const { service } = await h.controller.createService({ name: 'web', network: 'app', ports: ['80', '53/udp'] });
    assert.match(service.vip!, /^10\.70\.0\.\d+\/24$/);
    assert.deepEqual(service.ports, [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }]);
    const vip = service.vip!.split('/')[0]!;
    assert.deepEqual(h.firewall.services.get(service.id), { id: service.id, vip, ports: service.ports, backends: [] });
    const bridge = h.controller.getNetwork('app').network.driverState.bridgeName ?? `cnm-${h.controller.getNetwork('app').network.id.slice(0, 11)}`;
    assert.ok((await h.kernel.addrList(null, bridge)).some((a) => a.cidr === `${vip}/32`), 'VIP on the bridge');
    await h.controller.createSandbox({ name: 'c', networks: [{ network: 'app' }] });
    assert.deepEqual(h.dns.resolve(sbId('c'), 'web'), [vip]);
  });

  it('backends join by create and connect, and leave by disconnect and rm, in the same operation', async () => {
    await h.controller.createSandbox({ name: 'b1', networks: [{ network: 'app', services: ['web'] }] });
    await h.controller.createSandbox({ name: 'b2', networks: [{ network: 'app' }] });
    await h.controller.connect({ network: 'other', sandbox: 'b2' });
    assert.deepEqual(fwBackends('web'), [ipOf('b1')]);
    await h.controller.disconnect('app', 'b2', false);
    await h.controller.connect({ network: 'app', sandbox: 'b2', services: ['web'] });
    const b2 = h.controller.getSandbox('b2').endpoints.find((e) => e.network.name === 'app')!.endpoint.ipv4Address!.split('/')[0]!;
    assert.deepEqual(fwBackends('web'), [ipOf('b1'), b2].sort());
    assert.deepEqual(h.dns.resolve(sbId('c'), 'tasks.web').sort(), [ipOf('b1'), b2].sort());
    assert.equal(h.controller.getService('web').backends.length, 2);
    await h.controller.disconnect('app', 'b2', true);
    assert.deepEqual(fwBackends('web'), [ipOf('b1')]);
    await h.controller.removeSandbox('b1', true);
    assert.deepEqual(fwBackends('web'), []);
    assert.deepEqual(h.dns.resolve(sbId('c'), 'tasks.web'), []);
  });

  it('bad input: typed errors, nothing created, no address used up', async () => {
    const before = h.controller.listServices().length;
    await assert.rejects(h.controller.createService({ name: 'web', network: 'app' }), ConflictError);
    await assert.rejects(h.controller.createService({ name: 'x', network: 'nope' }), NotFoundError);
    await assert.rejects(h.controller.createService({ name: 'x', network: 'app', ports: ['http'] }), InvalidParameterError);
    await assert.rejects(h.controller.createService({ name: 'tasks.x', network: 'app' }), InvalidParameterError);
    await assert.rejects(h.controller.createService({ name: 'x', network: 'bridge' }), ForbiddenError);
    await assert.rejects(h.controller.createSandbox({ name: 'y', networks: [{ network: 'other', services: ['web'] }] }), InvalidParameterError);
    await assert.rejects(h.controller.createSandbox({ name: 'y', networks: [{ network: 'app', services: ['nosuch'] }] }), NotFoundError);
    assert.throws(() => h.controller.getSandbox('y'), NotFoundError);
    assert.equal(h.controller.listServices().length, before);
    await assert.rejects(h.controller.removeNetwork('app'), ForbiddenError);
  });

  it('a firewall failure undoes the create: no record, VIP released', async () => {
    const fw = h.firewall;
    const original = fw.setService.bind(fw);
    fw.setService = async () => {
      throw new Error('nft refused');
    };
    try {
      await assert.rejects(h.controller.createService({ name: 'broken', network: 'app' }), /nft refused/);
    } finally {
      fw.setService = original;
    }
    assert.throws(() => h.controller.getService('broken'), NotFoundError);
    // The VIP went back to the pool: the next service gets the same address.
    const a = await h.controller.createService({ name: 'again', network: 'app' });
    await h.controller.removeService('again');
    const b = await h.controller.createService({ name: 'again2', network: 'app', mode: 'dnsrr' });
    assert.equal(b.service.vip, undefined);
    assert.ok(a.service.vip);
    await h.controller.removeService('again2');
  });

  it('a restart restores services, VIPs and backends; rm then frees the network', async () => {
    await h.controller.createSandbox({ name: 'b3', networks: [{ network: 'app', services: ['web'] }] });
    const vip = h.controller.getService('web').service.vip;
    const h2 = await h.restart();
    assert.equal(h2.controller.getService('web').service.vip, vip);
    assert.deepEqual([...h2.firewall.services.values()].map((s) => s.backends), [[ipOf('b3')]]);
    assert.deepEqual(h2.dns.resolve(h2.controller.getSandbox('c').sandbox.id, 'web'), [vip!.split('/')[0]]);
    await h2.controller.removeService('web');
    assert.equal(h2.firewall.services.size, 0);
    assert.deepEqual(h2.dns.resolve(h2.controller.getSandbox('c').sandbox.id, 'web'), []);
    await h2.controller.removeSandbox('b3', true);
    await h2.controller.removeSandbox('c', true);
    await h2.controller.removeNetwork('app');
  });
});

describe('controller services: dnsrr, validation, recovery', () => {
  let h: Harness;
  const sbId = (name: string) => h.controller.getSandbox(name).sandbox.id;
  const ipOf = (name: string, net = 'rr') =>
    h.controller.getSandbox(name).endpoints.find((e) => e.network.name === net)!.endpoint.ipv4Address!.split('/')[0]!;
  const bridgeOf = (net: string) => h.firewall.networks.get(h.controller.getNetwork(net).network.id)!.bridge;
  const fwBackends = (svc: string) => [...(h.firewall.services.get(h.controller.getService(svc).service.id)?.backends ?? [])].sort();

  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'rr', ipam: { configs: [{ subnet: '10.72.0.0/24' }, { subnet: '10.73.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'far', ipam: { configs: [{ subnet: '10.74.0.0/24' }] } });
    await h.controller.createSandbox({ name: 'client', networks: [{ network: 'rr' }] });
    await h.controller.createSandbox({ name: 'outsider', networks: [{ network: 'far' }] });
  });
  after(async () => h.cleanup());

  it('dnsrr: NAME and tasks.NAME are the backends, nothing in nftables, only on the service network', async () => {
    const { service } = await h.controller.createService({ name: 'db', network: 'rr', mode: 'dnsrr' });
    assert.equal(service.vip, undefined);
    await h.controller.createSandbox({ name: 'd1', networks: [{ network: 'rr', services: ['db'] }] });
    await h.controller.createSandbox({ name: 'd2', networks: [{ network: 'far' }] });
    await h.controller.connect({ network: 'rr', sandbox: 'd2', services: [service.id.slice(0, 10)] });
    assert.equal(h.firewall.services.size, 0);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'db').sort(), [ipOf('d1'), ipOf('d2')].sort());
    assert.deepEqual(h.dns.resolve(sbId('client'), 'tasks.db').sort(), [ipOf('d1'), ipOf('d2')].sort());
    assert.deepEqual(h.dns.resolve(sbId('outsider'), 'db'), []);
    // d2 is also on "far", but its membership is on "rr": its "far" address is no backend.
    assert.ok(!h.dns.resolve(sbId('client'), 'db').includes(ipOf('d2', 'far')));
    await h.controller.removeSandbox('d2', true);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'db'), [ipOf('d1')]);
  });

  it('validates mode, ports, subnet, network and name before allocating anything', async () => {
    await h.controller.createNetwork({ name: 'v6only', enableIPv4: false, enableIPv6: true });
    const bad: Array<[Parameters<typeof h.controller.createService>[0], new (...a: never[]) => Error]> = [
      [{ name: 'p', network: 'rr', mode: 'dnsrr', ports: ['80'] }, InvalidParameterError],
      [{ name: 'p', network: 'rr', mode: 'rr' as never }, InvalidParameterError],
      [{ name: 'p', network: 'rr', ports: ['0'] }, InvalidParameterError],
      [{ name: 'p', network: 'rr', ports: ['80/sctp'] }, InvalidParameterError],
      [{ name: 'p', network: 'rr', vipSubnet: '10.99.0.0/24' }, InvalidParameterError],
      [{ name: 'p', network: 'v6only', vipSubnet: '10.72.0.0/24' }, InvalidParameterError],
      [{ name: 'p', network: 'host' }, ForbiddenError],
      [{ name: 'bad name', network: 'rr' }, InvalidParameterError],
      [{ name: 'x'.repeat(64), network: 'rr' }, InvalidParameterError],
      [{ name: 'db', network: 'far' }, ConflictError],
    ];
    for (const [req, type] of bad) await assert.rejects(h.controller.createService(req), type, JSON.stringify(req));
    assert.deepEqual(h.controller.listServices().map((s) => s.service.name), ['db']);
    const rr = await h.controller.createService({ name: 'rr6', network: 'v6only', mode: 'dnsrr' });
    await h.controller.removeService(rr.service.id);
    // vip mode on an IPv6-only network: an IPv6 VIP alone, on the bridge as a /128, balanced in nftables.
    const v6 = (await h.controller.createService({ name: 'v6', network: 'v6only' })).service;
    assert.equal(v6.vip, undefined);
    assert.match(v6.vip6 ?? '', /\/64$/);
    const vip6 = v6.vip6!.split('/')[0]!;
    assert.ok((await h.kernel.addrList(null, bridgeOf('v6only'))).some((a) => a.cidr === `${vip6}/128`));
    assert.deepEqual(h.firewall.services.get(`${v6.id}/6`), { id: v6.id, vip: vip6, ports: [], backends: [] });
    assert.equal(h.firewall.services.has(v6.id), false);
    await h.controller.removeService(v6.id);
    assert.equal(h.firewall.services.has(`${v6.id}/6`), false);
    assert.equal((await h.kernel.addrList(null, bridgeOf('v6only'))).some((a) => a.cidr === `${vip6}/128`), false);
    await h.controller.removeNetwork('v6only');
  });

  it('vip: the chosen subnet, duplicate ports once, the VIP claimed in the store and released on rm', async () => {
    const { service } = await h.controller.createService({ name: 'api', network: 'rr', vipSubnet: '10.73.0.0/24', ports: ['8080', '8080/TCP', '53/udp'] });
    assert.match(service.vip!, /^10\.73\.0\.\d+\/24$/);
    assert.deepEqual(service.ports, [{ port: 8080, protocol: 'tcp' }, { port: 53, protocol: 'udp' }]);
    const vip = service.vip!.split('/')[0]!;
    const claim = keys.address(service.vipPoolId!, vip);
    assert.equal((await h.store.get(claim))?.value, service.id);
    assert.equal((await h.store.get(keys.serviceName('api')))?.value, service.id);
    await assert.rejects(h.controller.createSandbox({ name: 'probe', networks: [{ network: 'rr', ipv4Address: vip }] }), /in use/i);
    await h.controller.removeService('api');
    assert.equal(await h.store.get(claim), undefined);
    assert.ok(!(await h.kernel.addrList(null, bridgeOf('rr'))).some((a) => a.cidr === `${vip}/32`), 'VIP off the bridge');
    // The address is free again: a sandbox can take it.
    await h.controller.createSandbox({ name: 'taker', networks: [{ network: 'rr', ipv4Address: vip }] });
    await h.controller.removeSandbox('taker', true);
  });

  it('a firewall failure on connect leaves neither the balancing nor the DNS changed', async () => {
    await h.controller.createService({ name: 'web', network: 'rr', ports: ['80'] });
    await h.controller.createSandbox({ name: 'w1', networks: [{ network: 'rr', services: ['web'] }] });
    const original = h.firewall.setService.bind(h.firewall);
    h.firewall.setService = async () => {
      throw new Error('nft refused');
    };
    try {
      await assert.rejects(h.controller.createSandbox({ name: 'w2', networks: [{ network: 'rr', services: ['web', 'db'] }] }), /nft refused/);
    } finally {
      h.firewall.setService = original;
    }
    assert.throws(() => h.controller.getSandbox('w2'), NotFoundError);
    assert.deepEqual(fwBackends('web'), [ipOf('w1')]);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'tasks.web'), [ipOf('w1')]);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'db'), [ipOf('d1')]);
  });

  it('a failed rm puts the VIP and the balancing back', async () => {
    const svc = h.controller.getService('web').service;
    const vip = svc.vip!.split('/')[0]!;
    const original = h.kernel.addrDel.bind(h.kernel);
    h.kernel.addrDel = async () => {
      throw new Error('EPERM');
    };
    try {
      await assert.rejects(h.controller.removeService('web'), /EPERM/);
    } finally {
      h.kernel.addrDel = original;
    }
    assert.equal(h.controller.getService('web').service.id, svc.id);
    assert.deepEqual(fwBackends('web'), [ipOf('w1')]);
    assert.ok((await h.kernel.addrList(null, bridgeOf('rr'))).some((a) => a.cidr === `${vip}/32`));
  });

  it('lost rules come back with every service and its backends', async () => {
    h.firewall.services.clear();
    h.firewall.intact = false;
    assert.equal(await h.controller.restoreFirewallIfLost(), true);
    assert.deepEqual(fwBackends('web'), [ipOf('w1')]);
    assert.equal(h.firewall.services.size, 1, 'dnsrr services have nothing in nftables');
  });

  it('restart: a missing VIP goes back on the bridge; a vanished adopted backend leaves its services', async () => {
    await h.kernel.createNetns('/adopted/svc1');
    const adoptee = await h.controller.createSandbox({ name: 'adoptee', netnsPath: '/adopted/svc1', networks: [{ network: 'rr', services: ['web', 'db'] }] });
    assert.deepEqual(fwBackends('web'), [ipOf('w1'), ipOf('adoptee')].sort());
    const vip = h.controller.getService('web').service.vip!.split('/')[0]!;
    await h.kernel.addrDel(null, bridgeOf('rr'), `${vip}/32`);
    // Vanished (as after a reboot): the given path and cnm's pin of it.
    await h.kernel.deleteNetns('/adopted/svc1');
    await h.kernel.deleteNetns(adoptee.sandbox.netnsPath);
    const w1 = ipOf('w1');
    const d1 = ipOf('d1');
    h = await h.restart();
    assert.ok((await h.kernel.addrList(null, bridgeOf('rr'))).some((a) => a.cidr === `${vip}/32`), 'VIP restored');
    assert.deepEqual(fwBackends('web'), [w1]);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'tasks.web'), [w1]);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'web'), [vip]);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'db'), [d1]);
    assert.deepEqual(h.controller.getService('db').backends.map((b) => b.sandbox.name), ['d1']);
  });

  it('emits service events; rm keeps the backends connected and lets the network go', async () => {
    const events: string[] = [];
    const stop = h.controller.subscribe((e) => events.push(`${e.type} ${e.action} ${e.attributes.name}`));
    await h.controller.createService({ name: 'tmp', network: 'rr', mode: 'dnsrr' });
    await h.controller.removeService('tmp');
    stop();
    assert.deepEqual(events, ['service create tmp', 'service destroy tmp']);
    await h.controller.removeService('web');
    assert.equal(h.controller.getSandbox('w1').endpoints.length, 1);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'tasks.web'), []);
    assert.deepEqual(h.dns.resolve(sbId('client'), 'w1'), [ipOf('w1')]);
    for (const sb of ['w1', 'd1', 'client']) await h.controller.removeSandbox(sb, true);
    await assert.rejects(h.controller.removeNetwork('rr'), (err: Error) => err instanceof ForbiddenError && /has active services \(db\)/.test(err.message));
    assert.equal((await h.controller.pruneNetworks(() => true)).includes('rr'), false);
    await h.controller.removeService('db');
    await h.controller.removeNetwork('rr');
    assert.throws(() => h.controller.getService('web'), NotFoundError);
  });
});
