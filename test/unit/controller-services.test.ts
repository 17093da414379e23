/**
 * The controller's services against fast fakes: VIP allocation and release, what the firewall and the
 * DNS are told on every membership change, validation (nothing changes on bad input), rollback, restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, ForbiddenError, InvalidParameterError, NotFoundError } from '../../src/errors.js';
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
