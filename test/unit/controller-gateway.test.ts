/**
 * The gateway network (Docker's docker_gwbridge) in the control plane, on the recording kernel: a driver
 * whose join asks for a default gateway (as the overlay's does) gets its sandbox an endpoint on
 * `cnm_gwbridge`, made on demand; Docker's rules for when that endpoint comes and goes; rollback; restart.
 * The test driver is local-scope and named nothing like "overlay": the controller keys on the join's answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpStatusOf } from '../../src/errors.js';
import type { DriverEndpoint, DriverNetwork, JoinResult, NetworkDriver, NetworkProgram } from '../../src/drivers/types.js';
import type { ControllerEvent } from '../../src/controller/types.js';
import { renderContainerSummary } from '../../src/api/render-container.js';
import { claimsOf } from '../../src/controller/endpoints.js';
import { Repository } from '../../src/controller/repository.js';
import { startHarness, type Harness } from '../helpers/controller-harness.js';

/** Joins put nothing in the kernel and give no gateway; non-internal networks ask for one. */
class NoGatewayDriver implements NetworkDriver<Record<string, never>, Record<string, never>> {
  readonly name = 'nogw';
  readonly scope = 'local' as const;
  readonly needsIpam = true;
  readonly joined = new Set<string>();
  parseNetworkOptions(): Record<string, never> {
    return {};
  }
  parseEndpointOptions(): Record<string, never> {
    return {};
  }
  validateNetwork(): void {}
  async createNetwork(): Promise<NetworkProgram> {
    return { driverState: {} };
  }
  async restoreNetwork(): Promise<NetworkProgram> {
    return { driverState: {} };
  }
  async deleteNetwork(): Promise<void> {}
  async join(net: DriverNetwork<Record<string, never>>, ep: DriverEndpoint<Record<string, never>>): Promise<JoinResult> {
    this.joined.add(ep.id);
    return { driverState: {}, ...(net.internal ? {} : { requiresDefaultGateway: true }) };
  }
  async leave(_net: DriverNetwork<Record<string, never>>, ep: DriverEndpoint<Record<string, never>>): Promise<void> {
    this.joined.delete(ep.id);
  }
  async endpointIntact(_net: DriverNetwork<Record<string, never>>, ep: DriverEndpoint<Record<string, never>>): Promise<boolean> {
    return this.joined.has(ep.id);
  }
  ownedLinks(): string[] {
    return [];
  }
}

function endpointsOf(h: Harness, sandbox: string): Array<{ net: string; name: string; ifName: string; gw?: string }> {
  return h.controller.getSandbox(sandbox).endpoints.map(({ endpoint, network }) => ({
    net: network.name,
    name: endpoint.name,
    ifName: endpoint.ifName,
    ...(endpoint.gatewayIpv4 ? { gw: endpoint.gatewayIpv4 } : {}),
  }));
}

async function defaultVia(h: Harness, sandbox: string): Promise<string | undefined> {
  const ns = h.controller.getSandbox(sandbox).sandbox.netnsPath;
  return (await h.kernel.routeList(ns, 4)).find((r) => r.dst === 'default')?.via;
}

describe('the gateway network for sandboxes whose networks give no gateway', () => {
  let h: Harness;
  const driver = new NoGatewayDriver();
  const events: string[] = [];
  before(async () => {
    h = await startHarness(undefined, undefined, [driver]);
    h.controller.subscribe((e: ControllerEvent) => events.push(`${e.type} ${e.action} ${e.attributes.name ?? ''}`));
    await h.controller.createNetwork({ name: 'ov1', driver: 'nogw', ipam: { configs: [{ subnet: '10.70.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'ov2', driver: 'nogw', ipam: { configs: [{ subnet: '10.71.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'ovint', driver: 'nogw', internal: true, ipam: { configs: [{ subnet: '10.72.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'br', ipam: { configs: [{ subnet: '10.73.0.0/24' }] } });
  });
  after(async () => h.cleanup());

  it('an internal network asks for nothing: no gateway network, no second endpoint, no default route', async () => {
    await h.controller.createSandbox({ name: 'i1', networks: [{ network: 'ovint' }] });
    assert.deepEqual(endpointsOf(h, 'i1'), [{ net: 'ovint', name: 'i1', ifName: 'eth0' }]);
    assert.throws(() => h.controller.getNetwork('cnm_gwbridge'), /not found/);
    assert.equal(await defaultVia(h, 'i1'), undefined);
  });

  it('the first sandbox that needs one makes cnm_gwbridge and gets gateway_<id> on it, with the default route', async () => {
    const s1 = (await h.controller.createSandbox({ name: 's1', networks: [{ network: 'ov1' }] })).sandbox;
    const gw = h.controller.getNetwork('cnm_gwbridge').network;
    assert.equal(gw.driver, 'bridge');
    assert.equal(gw.scope, 'local');
    assert.equal(gw.internal, false);
    assert.equal(gw.enableIPv6, false);
    assert.equal(gw.predefined, false);
    assert.deepEqual(gw.options, {
      'com.docker.network.bridge.name': 'cnmgw0',
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.enable_ip_masquerade': 'true',
    });
    const pool = gw.ipam.pools[0]!;
    assert.match(pool.subnet, /^172\.\d+\.\d+\.0\/24$/, 'a subnet from the local pools');
    assert.equal((await h.kernel.linkGet(null, 'cnmgw0'))?.kind, 'bridge');
    assert.deepEqual(endpointsOf(h, 's1'), [
      { net: 'ov1', name: 's1', ifName: 'eth0' },
      { net: 'cnm_gwbridge', name: `gateway_${s1.id.slice(0, 12)}`, ifName: 'eth1', gw: pool.gateway },
    ]);
    assert.equal(await defaultVia(h, 's1'), pool.gateway);
    // Docker's container view leaves the gateway network out, as Docker's inspect leaves out docker_gwbridge.
    const summary = renderContainerSummary(h.controller.getSandbox('s1')) as { NetworkSettings: { Networks: Record<string, unknown> } };
    assert.deepEqual(Object.keys(summary.NetworkSettings.Networks), ['ov1']);
    // network inspect lists it under its own name; the sandbox's names are not given to the gateway network.
    const detail = h.controller.getNetwork('cnm_gwbridge');
    assert.deepEqual(detail.endpoints.map((e) => e.endpoint.name), [`gateway_${s1.id.slice(0, 12)}`]);
    assert.ok(events.includes('network create cnm_gwbridge') && events.includes('network connect cnm_gwbridge'), events.join('\n'));
    const firewall = h.firewall.networks.get(gw.id)!;
    assert.equal(firewall.icc, false);
    assert.equal(firewall.masquerade, true);
  });

  it('a second sandbox reuses the network; removing the network while in use is refused', async () => {
    const s2 = (await h.controller.createSandbox({ name: 's2', networks: [{ network: 'ov2' }] })).sandbox;
    assert.equal(h.controller.listNetworks().filter((n) => n.network.name === 'cnm_gwbridge').length, 1);
    // Both are on cnm_gwbridge, yet s1's names do not resolve from s2's overlay: only `gateway_<id>` does.
    const s1 = h.controller.getSandbox('s1');
    const s1Gw = s1.endpoints.find((e) => e.network.name === 'cnm_gwbridge')!.endpoint.ipv4Address!.split('/')[0];
    assert.deepEqual(h.dns.resolve(s2.id, `gateway_${s1.sandbox.id.slice(0, 12)}`), [s1Gw]);
    for (const name of ['s1', s1.sandbox.id.slice(0, 12), s1.sandbox.hostname]) assert.deepEqual(h.dns.resolve(s2.id, name), [], name);
    await assert.rejects(h.controller.removeNetwork('cnm_gwbridge'), (err: unknown) => {
      assert.equal(httpStatusOf(err), 403);
      assert.match((err as Error).message, new RegExp(`has active endpoints \\(.*gateway_${s2.id.slice(0, 12)}`));
      return true;
    });
    assert.ok(h.controller.getNetwork('cnm_gwbridge'));
  });

  it('joining a network with a gateway drops the gateway endpoint (the route moves); leaving it brings it back', async () => {
    await h.controller.connect({ network: 'br', sandbox: 's1' });
    assert.deepEqual(endpointsOf(h, 's1').map((e) => e.net), ['ov1', 'br']);
    assert.equal(await defaultVia(h, 's1'), '10.73.0.1');
    await h.controller.disconnect('br', 's1', false);
    assert.deepEqual(endpointsOf(h, 's1').map((e) => e.net), ['ov1', 'cnm_gwbridge']);
    assert.equal(await defaultVia(h, 's1'), h.controller.getNetwork('cnm_gwbridge').network.ipam.pools[0]!.gateway);
    // Created on a bridge network and an overlay at once: the bridge gives the gateway, no gateway endpoint.
    await h.controller.createSandbox({ name: 'both', networks: [{ network: 'br' }, { network: 'ov1' }] });
    assert.deepEqual(endpointsOf(h, 'both').map((e) => e.net), ['br', 'ov1']);
    await h.controller.removeSandbox('both', true);
  });

  it('the last endpoint that needed it going takes the gateway endpoint; the network stays until removed', async () => {
    await h.controller.connect({ network: 'ov2', sandbox: 's1' });
    assert.deepEqual(endpointsOf(h, 's1').map((e) => e.net), ['ov1', 'cnm_gwbridge', 'ov2']);
    await h.controller.disconnect('ov1', 's1', false);
    assert.deepEqual(endpointsOf(h, 's1').map((e) => e.net), ['cnm_gwbridge', 'ov2'], 'ov2 still needs it');
    await h.controller.disconnect('ov2', 's1', false);
    assert.deepEqual(endpointsOf(h, 's1'), [], 'no overlay left: no gateway endpoint');
    assert.equal(await defaultVia(h, 's1'), undefined);
    await h.controller.removeSandbox('s1', false);
    await h.controller.removeSandbox('s2', false);
    assert.equal(h.controller.getNetwork('cnm_gwbridge').endpoints.length, 0);
    await h.controller.removeNetwork('cnm_gwbridge');
    assert.equal(await h.kernel.linkGet(null, 'cnmgw0'), undefined);
  });

  it('a gateway endpoint that cannot be made undoes the connect and the create (nothing left)', async () => {
    // A network of that name that cannot serve: internal.
    await h.controller.createNetwork({ name: 'cnm_gwbridge', internal: true, ipam: { configs: [{ subnet: '10.74.0.0/24' }] } });
    await h.controller.createSandbox({ name: 'c1', networks: [{ network: 'br' }] });
    // With br's gateway the overlay needs no gateway endpoint: the connect works.
    await h.controller.connect({ network: 'ov1', sandbox: 'c1' });
    await h.controller.disconnect('ov1', 'c1', false);
    await h.controller.disconnect('br', 'c1', false);
    const before = { eps: h.controller.info().endpoints, links: (await h.kernel.linkList(null)).map((l) => l.name).sort() };
    await assert.rejects(h.controller.connect({ network: 'ov1', sandbox: 'c1' }), (err: unknown) => {
      assert.equal(httpStatusOf(err), 403);
      assert.match((err as Error).message, /network cnm_gwbridge cannot be the gateway network: it is internal/);
      return true;
    });
    assert.deepEqual(endpointsOf(h, 'c1'), [], 'the overlay endpoint was taken back');
    await assert.rejects(h.controller.createSandbox({ name: 'cx2', networks: [{ network: 'ov1' }] }), /cannot be the gateway network/);
    assert.throws(() => h.controller.getSandbox('cx2'), /No such sandbox/);
    assert.equal(h.controller.info().endpoints, before.eps);
    assert.deepEqual((await h.kernel.linkList(null)).map((l) => l.name).sort(), before.links);
    await h.controller.removeSandbox('c1', false);
    await h.controller.removeNetwork('cnm_gwbridge');
  });

  it('restart: a missing gateway endpoint is added, one no longer needed is removed, the records and kernel follow', async () => {
    await h.controller.createSandbox({ name: 'r1', networks: [{ network: 'ov1' }] });
    await h.controller.createSandbox({ name: 'r2', networks: [{ network: 'ov2' }] });
    const r1 = h.controller.getSandbox('r1');
    const r2 = h.controller.getSandbox('r2');
    const gw1 = r1.endpoints.find((e) => e.network.name === 'cnm_gwbridge')!.endpoint;
    const ov2 = r2.endpoints.find((e) => e.network.name === 'ov2')!.endpoint;
    // As a daemon killed between the two halves of a change would leave it: r1's gateway endpoint record
    // lost (its veth still there), r2's overlay endpoint record gone but its gateway endpoint kept.
    const repo = new Repository(h.store);
    for (const [ep, net] of [[gw1, 'cnm_gwbridge'], [ov2, 'ov2']] as const) {
      await repo.deleteEndpoint(ep, claimsOf(h.controller.getNetwork(net).network, ep));
    }
    const h2 = await h.restart();
    try {
      const after1 = h2.controller.getSandbox('r1').endpoints.map((e) => e.network.name);
      assert.deepEqual(after1, ['ov1', 'cnm_gwbridge']);
      const newGw = h2.controller.getSandbox('r1').endpoints.find((e) => e.network.name === 'cnm_gwbridge')!.endpoint;
      assert.notEqual(newGw.id, gw1.id, 'a new endpoint replaced the lost record');
      assert.equal(newGw.name, `gateway_${r1.sandbox.id.slice(0, 12)}`);
      assert.equal(await defaultVia(h2, 'r1'), h2.controller.getNetwork('cnm_gwbridge').network.ipam.pools[0]!.gateway);
      assert.deepEqual(h2.controller.getSandbox('r2').endpoints.map((e) => e.network.name), [], 'r2 needs none any more');
      const vethNames = (await h2.kernel.linkList(null)).map((l) => l.name);
      assert.ok(!vethNames.some((n) => n.startsWith(`cnmv${gw1.id.slice(0, 11)}`)), 'the lost record\'s veth is gone');
      // A second restart changes nothing.
      const ids = h2.controller.getNetwork('cnm_gwbridge').endpoints.map((e) => e.endpoint.id);
      const h3 = await h2.restart();
      assert.deepEqual(h3.controller.getNetwork('cnm_gwbridge').endpoints.map((e) => e.endpoint.id), ids);
      await h3.controller.removeSandbox('r1', false);
      await h3.controller.removeSandbox('r2', false);
      assert.deepEqual(h3.controller.getNetwork('cnm_gwbridge').endpoints, []);
    } finally {
      await h2.cleanup();
    }
  });
});
