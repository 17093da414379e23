/** Published ports in the control plane against the recording kernel and firewall. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { httpStatusOf } from '../../src/errors.js';
import type { PortBindingRequest } from '../../src/controller/types.js';

async function rejects(p: Promise<unknown>, status: number, match?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.equal(httpStatusOf(err), status, `status of ${(err as Error).message}`);
    if (match) assert.match((err as Error).message, match);
    return true;
  });
}

const port = (containerPort: number, hostPort: number, over: Partial<PortBindingRequest> = {}): PortBindingRequest => ({
  protocol: 'tcp',
  containerPort,
  hostIp: '',
  hostPortStart: hostPort,
  hostPortEnd: hostPort,
  ...over,
});

describe('controller: published ports', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await h.controller.createNetwork({ name: 'pn', ipam: { configs: [{ subnet: '10.30.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'pbind', ipam: { configs: [{ subnet: '10.31.0.0/24' }] }, options: { 'com.docker.network.bridge.host_binding_ipv4': '192.0.2.5' } });
    await h.controller.createNetwork({ name: 'pint', internal: true, ipam: { configs: [{ subnet: '10.32.0.0/24' }] } });
    await h.controller.createNetwork({ name: 'pdual', enableIPv6: true, ipam: { configs: [{ subnet: '10.33.0.0/24' }, { subnet: 'fd00:33::/64' }] } });
    await h.controller.createNetwork({ name: 'pv6', enableIPv4: false, enableIPv6: true, ipam: { configs: [{ subnet: 'fd00:34::/64' }] } });
  });
  after(async () => h.cleanup());

  it('stores the granted ports and opens them in one firewall call, towards the endpoint address', async () => {
    const d = await h.controller.createSandbox({ name: 'w', networks: [{ network: 'pn' }], ports: [port(80, 8080), port(53, 5353, { protocol: 'udp', hostIp: '127.0.0.1' })] });
    assert.deepEqual(d.sandbox.ports, [
      { protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 },
      { protocol: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPort: 5353 },
    ]);
    const fp = h.firewall.ports.get(d.sandbox.id)!;
    const address = d.endpoints[0]!.endpoint.ipv4Address!.split('/')[0];
    assert.deepEqual(fp.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.address}:${p.containerPort}/${p.protocol}`), [
      `0.0.0.0:8080->${address}:80/tcp`,
      `127.0.0.1:5353->${address}:53/udp`,
    ]);
    assert.equal(h.firewall.calls.filter((c) => c.startsWith('ports ')).length, 1);
    // route_localnet on the bridge: the host reaches its 127.0.0.1 ports.
    const bridge = h.firewall.networks.get(d.endpoints[0]!.network.id)!.bridge;
    assert.equal(await h.kernel.sysctlGet(null, `net.ipv4.conf.${bridge}.route_localnet`), '1');
  });

  it('bridges skip duplicate address detection for their own link-local address (the first forwarded IPv6 packet is not held up)', async () => {
    for (const name of ['pdual', 'pv6', 'pn']) {
      const bridge = h.firewall.networks.get(h.controller.getNetwork(name).network.id)!.bridge;
      assert.equal(await h.kernel.sysctlGet(null, `net.ipv6.conf.${bridge}.accept_dad`), '0', name);
    }
  });

  it('host_binding_ipv4 is the default host address; an explicit address wins', async () => {
    const d = await h.controller.createSandbox({ name: 'b', networks: [{ network: 'pbind' }], ports: [port(80, 9000), port(81, 9001, { hostIp: '0.0.0.0' })] });
    assert.deepEqual(d.sandbox.ports!.map((p) => p.hostIp), ['192.0.2.5', '0.0.0.0']);
    // Only loopback-reachable ports ask for route_localnet: not the 192.0.2.5 one... but 0.0.0.0 does.
    const bridge = h.firewall.networks.get(d.endpoints[0]!.network.id)!.bridge;
    assert.equal(await h.kernel.sysctlGet(null, `net.ipv4.conf.${bridge}.route_localnet`), '1');
  });

  it('conflicts and bad input change nothing: no sandbox, no namespace, no firewall call', async () => {
    const before = { sandboxes: h.controller.listSandboxes().length, calls: h.firewall.calls.length, kernelCalls: h.kernel.calls.length };
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 8080)] }), 409, /^Bind for 0\.0\.0\.0:8080 failed: port is already allocated$/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 5353, { protocol: 'udp' })] }), 409);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 8081), port(81, 8081)] }), 409);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pint' }], ports: [port(80, 8082)] }), 400, /cannot be published on network pint/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'host' }], ports: [port(80, 8082)] }), 400, /host network/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 8082, { hostIp: '::' })] }), 400, /^cannot publish port 80\/tcp on ::: network pn has no IPv6/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 8082, { hostIp: '::1' })] }), 400, /on ::1: the kernel does not route IPv6 loopback/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(80, 8082, { hostIp: '::ffff:10.0.0.1' })] }), 400, /invalid host IP address/);
    await rejects(h.controller.createSandbox({ name: 'x', networks: [{ network: 'pn' }], ports: [port(0, 8082)] }), 400, /invalid containerPort/);
    assert.equal(h.controller.listSandboxes().length, before.sandboxes);
    assert.equal(h.firewall.calls.length, before.calls);
    assert.deepEqual(h.kernel.calls.slice(before.kernelCalls).filter((c) => !/Get|List|Exists/.test(c.method)), [], 'no kernel change');
    // The same request on a free port is fine; a sandbox on an internal and a bridge network publishes on the bridge one.
    const ok = await h.controller.createSandbox({ name: 'x', networks: [{ network: 'pint' }, { network: 'pn' }], ports: [port(80, 8082)] });
    assert.equal(ok.sandbox.portsNetworkId, h.controller.getNetwork('pn').network.id);
  });

  it('dual-stack: no host address → 0.0.0.0 and :: on one port, each to the endpoint address of its family', async () => {
    const d = await h.controller.createSandbox({ name: 'ds', networks: [{ network: 'pdual' }], ports: [port(80, 7080), port(81, 0), port(82, 7082, { hostIp: 'FD00:0::9' })] });
    const ports = d.sandbox.ports!;
    assert.deepEqual(ports.filter((p) => p.containerPort === 80).map((p) => `${p.hostIp}:${p.hostPort}`), ['0.0.0.0:7080', ':::7080']);
    const random = ports.filter((p) => p.containerPort === 81);
    assert.deepEqual(random.map((p) => p.hostIp), ['0.0.0.0', '::']);
    assert.equal(random[0]!.hostPort, random[1]!.hostPort, 'the same random port on both families');
    assert.deepEqual(ports.filter((p) => p.containerPort === 82).map((p) => p.hostIp), ['fd00::9'], 'canonical');
    const ep = d.endpoints[0]!.endpoint;
    const [v4, v6] = [ep.ipv4Address!.split('/')[0], ep.ipv6Address!.split('/')[0]];
    const fp = h.firewall.ports.get(d.sandbox.id)!;
    assert.deepEqual(fp.ports.filter((p) => p.containerPort === 80).map((p) => p.address), [v4, v6]);
    // IPv6-only: :: alone.
    const o = await h.controller.createSandbox({ name: 'o6', networks: [{ network: 'pv6' }], ports: [port(80, 7090)] });
    assert.deepEqual(o.sandbox.ports, [{ protocol: 'tcp', containerPort: 80, hostIp: '::', hostPort: 7090 }]);
    await rejects(h.controller.createSandbox({ name: 'x6', networks: [{ network: 'pv6' }], ports: [port(80, 7091, { hostIp: '127.0.0.1' })] }), 400, /network pv6 has no IPv4/);
  });

  it('random ports come from the ephemeral range and are never one already published', async () => {
    const a = await h.controller.createSandbox({ name: 'r1', networks: [{ network: 'pn' }], ports: [port(80, 0), port(81, 0)] });
    const [p1, p2] = a.sandbox.ports!.map((p) => p.hostPort);
    for (const p of [p1!, p2!]) assert.ok(p >= 32768 && p <= 60999, String(p));
    assert.notEqual(p1, p2);
  });

  it('restart: the firewall gets every sandbox\'s ports back; disconnect and remove close them', async () => {
    const h2 = await h.restart();
    const w = h2.controller.getSandbox('w').sandbox;
    assert.equal(h2.firewall.ports.get(w.id)?.ports.length, 2, 'reconciled with the ports');
    await h2.controller.disconnect('pn', 'w', false);
    assert.equal(h2.firewall.ports.has(w.id), false, 'closed with the endpoint');
    await h2.controller.connect({ network: 'pn', sandbox: 'w' });
    assert.equal(h2.firewall.ports.get(w.id)?.ports.length, 2, 'open again on reconnect');
    await h2.controller.removeSandbox('w', false);
    assert.equal(h2.firewall.ports.has(w.id), false);
    // Its host port is free again.
    await h2.controller.createSandbox({ name: 'w2', networks: [{ network: 'pn' }], ports: [port(80, 8080)] });
  });
});
