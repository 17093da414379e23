/**
 * The Docker remote network driver front door, over its real unix socket, in front of the real controller
 * wired to the recording kernel: the protocol's calls and what they do to cnm's state, its hostile-input
 * answers ({"Err"} with a 4xx, nothing changed), and a restart keeping Docker's endpoints.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { startDockerPluginServer, type DockerPluginServer } from '../../src/api/docker-plugin/server.js';
import { PLUGIN_MIME } from '../../src/api/docker-plugin/protocol.js';
import { handoffPeerOf, hostVethOf } from '../../src/drivers/bridge/driver.js';
import { silentLogger } from '../../src/util/log.js';
import { startHarness, type Harness } from '../helpers/controller-harness.js';
import { rawRequest } from '../helpers/raw-http.js';

interface Answer {
  status: number;
  type: string;
  body: any;
}

function call(socketPath: string, path: string, body: unknown, headers: Record<string, string> = {}, method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = request({ socketPath, path, method, agent: false, headers: { 'content-length': data.length, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const NET = 'a'.repeat(63) + '1';
const EP = 'b'.repeat(63) + '2';
const EP2 = 'c'.repeat(63) + '3';

function createNetworkBody(id = NET, extra: Record<string, unknown> = {}) {
  return createBody(id, { 'cnm.name': 'dnet', ...extra });
}

function createBody(id: string, generic: Record<string, unknown>) {
  return {
    NetworkID: id,
    Options: { 'com.docker.network.generic': { ...generic } as Record<string, unknown>, 'com.docker.network.enable_ipv6': false },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.77.0.0/24', Gateway: '10.77.0.1/24', AuxAddresses: { r: '10.77.0.9/24' } }],
    IPv6Data: [],
  };
}

describe('Docker plugin front door', () => {
  let h: Harness;
  let server: DockerPluginServer;
  let sock: string;

  before(async () => {
    h = await startHarness();
    sock = join(h.execRoot, 'plugins', 'cnmt.sock');
    server = await startDockerPluginServer({ controller: h.controller, name: 'cnmt', socketPath: sock, logger: silentLogger });
  });
  after(async () => {
    await server?.close();
    await h?.cleanup();
  });

  it('activates as a local-scope NetworkDriver, answering in the plugin MIME type', async () => {
    const a = await call(sock, '/Plugin.Activate', {});
    assert.deepEqual([a.status, a.body], [200, { Implements: ['NetworkDriver'] }]);
    assert.equal(a.type, PLUGIN_MIME);
    const c = await call(sock, '/NetworkDriver.GetCapabilities', '', { 'content-type': PLUGIN_MIME });
    assert.deepEqual(c.body, { Scope: 'local', ConnectivityScope: 'local' });
  });

  it("CreateNetwork makes a cnm network with Docker's ID and pool; the endpoint lifecycle claims, hands over and releases", async () => {
    assert.deepEqual((await call(sock, '/NetworkDriver.CreateNetwork', createNetworkBody())).body, {});
    const net = h.controller.getNetwork(NET).network;
    assert.equal(net.name, 'dnet');
    assert.equal(net.driver, 'bridge');
    assert.deepEqual(
      net.ipam.pools.map((p) => [p.subnet, p.gateway, p.auxAddresses, p.ipRange]),
      // Docker's IPAM hands out from the bottom: cnm's sandboxes take the upper half by default.
      [['10.77.0.0/24', '10.77.0.1', { r: '10.77.0.9' }, '10.77.0.128/25']],
    );

    const created = await call(sock, '/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.77.0.2/24' } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const mac: string = created.body.Interface.MacAddress;
    assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    // A MAC Docker chose is kept and not echoed (Docker refuses a driver that changes what it sent).
    const withMac = await call(sock, '/NetworkDriver.CreateEndpoint', {
      NetworkID: NET, EndpointID: EP2, Interface: { Address: '10.77.0.3/24', MacAddress: '02:42:0a:4d:00:03' },
    });
    assert.deepEqual([withMac.status, withMac.body], [200, {}]);

    // Network rm in cnm is refused while Docker's endpoints are on it.
    await assert.rejects(h.controller.removeNetwork(NET), /has active endpoints \(docker endpoint bbbbbbbbbbbb, docker endpoint cccccccccccc\)/);

    // cnm's own sandboxes can neither take Docker's addresses nor get them by allocation.
    await assert.rejects(
      h.controller.createSandbox({ name: 'taker', networks: [{ network: NET, ipv4Address: '10.77.0.2' }] }),
      /Address already in use/,
    );
    const sb = await h.controller.createSandbox({ name: 's1', networks: [{ network: NET }] });
    assert.equal(sb.endpoints[0]!.endpoint.ipv4Address, '10.77.0.128/24');
    assert.deepEqual(
      h.controller.getNetwork(NET).attachments.map((a) => [a.id, a.ipv4Address]),
      [[EP, '10.77.0.2/24'], [EP2, '10.77.0.3/24']],
    );

    const join = await call(sock, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x' });
    assert.deepEqual(join.body, { InterfaceName: { SrcName: handoffPeerOf({ id: EP }), DstPrefix: 'eth' }, Gateway: '10.77.0.1' });
    const peer = await h.kernel.linkGet(null, handoffPeerOf({ id: EP }));
    assert.equal(peer?.mac, mac, 'the handed-over end carries the MAC Docker was told');
    assert.equal((await h.kernel.linkGet(null, hostVethOf({ id: EP })))?.master, 'cnm-' + NET.slice(0, 11));
    const info = await call(sock, '/NetworkDriver.EndpointOperInfo', { NetworkID: NET, EndpointID: EP });
    assert.equal(info.body.Value['com.docker.network.endpoint.macaddress'], mac);
    for (const m of ['ProgramExternalConnectivity', 'RevokeExternalConnectivity']) {
      assert.deepEqual((await call(sock, `/NetworkDriver.${m}`, { NetworkID: NET, EndpointID: EP, Options: {} })).body, {});
    }
    assert.equal(h.firewall.ports.size, 0, 'no ports: nothing published');

    // -p 8080:80: published as a sandbox's port would be (one firewall element set under the endpoint's ID).
    const portmap = (hostPort: number) => ({ 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: hostPort, HostPortEnd: hostPort }] });
    const program = await call(sock, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: portmap(8080) });
    assert.deepEqual([program.status, program.body], [200, {}]);
    assert.deepEqual(h.firewall.ports.get(EP)?.ports, [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, address: '10.77.0.2', containerPort: 80 }]);
    assert.deepEqual(h.controller.getAttachment(NET, EP).ports, [{ protocol: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }]);
    // The same host port for a sandbox, or for another endpoint: Docker's 409 words, nothing changed.
    await assert.rejects(
      h.controller.createSandbox({ name: 'port-taker', networks: [{ network: NET }], ports: [{ protocol: 'tcp', containerPort: 1, hostIp: '', hostPortStart: 8080, hostPortEnd: 8080 }] }),
      /Bind for 0\.0\.0\.0:8080 failed: port is already allocated/,
    );
    await call(sock, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP2, SandboxKey: '/var/run/docker/netns/y' });
    const clash = await call(sock, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP2, Options: portmap(8080) });
    assert.deepEqual([clash.status, clash.body], [409, { Err: 'Bind for 0.0.0.0:8080 failed: port is already allocated' }]);
    assert.equal(h.controller.getAttachment(NET, EP2).ports, undefined);
    assert.equal(h.firewall.ports.has(EP2), false);
    // Lost rules (nft flush ruleset) come back with them.
    const before = h.firewall.ports.get(EP);
    h.firewall.ports.clear();
    h.firewall.intact = false;
    assert.equal(await h.controller.restoreFirewallIfLost(), true);
    assert.deepEqual(h.firewall.ports.get(EP), before);
    // Revoke closes them and frees the host port; a second revoke is a no-op.
    assert.deepEqual((await call(sock, '/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP })).body, {});
    assert.equal(h.firewall.ports.has(EP), false);
    assert.equal(h.controller.getAttachment(NET, EP).ports, undefined);
    assert.equal((await call(sock, '/NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP })).status, 200);
    assert.equal((await call(sock, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP2, Options: portmap(8080) })).status, 200);
    // Leave without a revoke (Docker lost it) closes them too.
    assert.deepEqual((await call(sock, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP2 })).body, {});
    assert.equal(h.firewall.ports.has(EP2), false);
    // Not joined: refused.
    assert.equal((await call(sock, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP2, Options: portmap(8081) })).status, 403);

    assert.deepEqual((await call(sock, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP })).body, {});
    assert.equal(await h.kernel.linkGet(null, hostVethOf({ id: EP })), undefined);
    assert.equal(await h.kernel.linkGet(null, handoffPeerOf({ id: EP })), undefined);
    for (const ep of [EP, EP2]) {
      assert.deepEqual((await call(sock, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep })).body, {});
    }
    // Repeated: idempotent, as Docker retries after errors.
    assert.equal((await call(sock, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP })).status, 200);
    assert.deepEqual(h.controller.getNetwork(NET).attachments, []);
    // Released: the address can be a sandbox's now.
    const again = await h.controller.createSandbox({ name: 'taker2', networks: [{ network: NET, ipv4Address: '10.77.0.2' }] });
    assert.equal(again.endpoints[0]!.endpoint.ipv4Address, '10.77.0.2/24');

    // DeleteNetwork with cnm sandboxes on it: refused in cnm's words.
    const busy = await call(sock, '/NetworkDriver.DeleteNetwork', { NetworkID: NET });
    assert.equal(busy.status, 403);
    assert.match(busy.body.Err, /has active endpoints \(s1, taker2\)/);
    await h.controller.removeSandbox('s1', true);
    await h.controller.removeSandbox('taker2', true);
    assert.deepEqual((await call(sock, '/NetworkDriver.DeleteNetwork', { NetworkID: NET })).body, {});
    assert.throws(() => h.controller.getNetwork(NET), /not found/);
    assert.equal((await call(sock, '/NetworkDriver.DeleteNetwork', { NetworkID: NET })).status, 200, 'idempotent');
  });

  it('-o cnm.ip-range picks where cnm allocates for its own sandboxes', async () => {
    const id = 'd'.repeat(64);
    const r = await call(sock, '/NetworkDriver.CreateNetwork', { ...createNetworkBody(id, { 'cnm.ip-range': '10.78.0.64/26', 'cnm.name': 'ranged' }), IPv4Data: [{ Pool: '10.78.0.0/24', Gateway: '10.78.0.1/24' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const sb = await h.controller.createSandbox({ name: 'ranged-sb', networks: [{ network: id }] });
    assert.equal(sb.endpoints[0]!.endpoint.ipv4Address, '10.78.0.64/24');
    await h.controller.removeSandbox('ranged-sb', true);
    assert.equal((await call(sock, '/NetworkDriver.DeleteNetwork', { NetworkID: id })).status, 200);
  });

  it('answers bad calls with {"Err"} and a 4xx, and changes nothing', async () => {
    const networks = h.controller.listNetworks().length;
    // Its own ID and name: independent of what the other tests left.
    const NET = 'e'.repeat(63) + '4';
    const createNetworkBody = (id = NET, extra: Record<string, unknown> = {}) => {
      const body = createBody(id, extra);
      body.Options['com.docker.network.generic']['cnm.name'] ??= 'bad';
      return body;
    };
    const cases: Array<[string, unknown, number, RegExp, Record<string, string>?]> = [
      ['/NetworkDriver.CreateNetwork', '{"NetworkID":', 400, /invalid JSON/],
      ['/NetworkDriver.CreateNetwork', { NetworkID: 'nope' }, 400, /NetworkID: must be 64 lowercase hex digits/],
      ['/NetworkDriver.CreateNetwork', createNetworkBody(NET, { 'cnm.bogus': '1' }), 400, /unknown option cnm\.bogus/],
      ['/NetworkDriver.CreateNetwork', createNetworkBody(NET, { 'cnm.driver': 'host' }), 400, /cnm has no driver "host" that can serve another runtime's containers \(there: bridge\)/],
      ['/NetworkDriver.CreateNetwork', createNetworkBody(NET, { 'cnm.driver': 'nope' }), 400, /cnm has no driver "nope"/],
      ['/NetworkDriver.CreateNetwork', createNetworkBody(NET, { 'com.docker.network.bridge.enable_icc': 'maybe' }), 400, /enable_icc/],
      ['/NetworkDriver.CreateNetwork', { ...createNetworkBody(), Options: { 'com.docker.network.generic': { x: 1 } } }, 400, /invalid JSON/],
      ['/NetworkDriver.CreateNetwork', { ...createNetworkBody(), IPv4Data: new Array(17).fill({ Pool: '10.1.0.0/24' }) }, 400, /more than 16 pools/],
      ['/NetworkDriver.CreateNetwork', createNetworkBody(), 400, /Content-Type/, { 'content-type': 'text/plain' }],
      ['/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP }, 404, /network e{63}4 not found/],
      ['/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP }, 404, /endpoint b{63}2 not found/],
      ['/NetworkDriver.CreateNetwork', `{"NetworkID":"${'x'.repeat(70_000)}"}`, 400, /request body too large/],
    ];
    for (const [path, body, status, message, headers] of cases) {
      const r = await call(sock, path, body, headers);
      assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.Err, message);
      assert.equal(r.type, PLUGIN_MIME);
    }
    const wrongMethod = await call(sock, '/Plugin.Activate', '', {}, 'GET');
    assert.deepEqual([wrongMethod.status, wrongMethod.body.Err.slice(0, 10)], [405, 'method GET']);
    const unknown = await call(sock, '/IpamDriver.RequestPool', {});
    assert.equal(unknown.status, 404);
    const garbage = await rawRequest(sock, 'POST /Plugin.Activate HTTP/1.1\r\nBroken\r\n\r\n');
    assert.equal(garbage.status, 400);
    assert.match(garbage.text, /"Err":"malformed HTTP request/);
    assert.equal(h.controller.listNetworks().length, networks, 'nothing created');
    // Still serving.
    assert.equal((await call(sock, '/Plugin.Activate', {})).status, 200);
  });

  it('forgets at start an endpoint whose interface died while cnm was down, releasing its address', async () => {
    const id = 'f'.repeat(64);
    const ep = '9'.repeat(64);
    await call(sock, '/NetworkDriver.CreateNetwork', { ...createBody(id, { 'cnm.name': 'vanish' }), IPv4Data: [{ Pool: '10.79.0.0/24', Gateway: '10.79.0.1/24' }] });
    await call(sock, '/NetworkDriver.CreateEndpoint', { NetworkID: id, EndpointID: ep, Interface: { Address: '10.79.0.2/24' } });
    assert.equal((await call(sock, '/NetworkDriver.Join', { NetworkID: id, EndpointID: ep })).status, 200);
    // The container's namespace goes while cnm is down: the veth pair goes with it.
    await h.kernel.linkDel(null, hostVethOf({ id: ep }));
    const h2 = await h.restart();
    assert.deepEqual(h2.controller.getNetwork(id).attachments, []);
    const sb = await h2.controller.createSandbox({ name: 'reuse', networks: [{ network: id, ipv4Address: '10.79.0.2' }] });
    assert.equal(sb.endpoints[0]!.endpoint.ipv4Address, '10.79.0.2/24');
    await h2.controller.removeSandbox('reuse', true);
    await h2.controller.removeNetworkById(id);
  });

  it("keeps Docker's endpoints, their claims and their interfaces across a restart", async () => {
    await call(sock, '/NetworkDriver.CreateNetwork', createNetworkBody());
    await call(sock, '/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.77.0.2/24' } });
    await call(sock, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/x' });
    const h2 = await h.restart();
    assert.deepEqual(h2.controller.getNetwork(NET).attachments.map((a) => [a.id, a.joined?.srcName]), [[EP, handoffPeerOf({ id: EP })]]);
    assert.ok(await h2.kernel.linkGet(null, hostVethOf({ id: EP })), 'host end not removed as a leak');
    assert.ok(await h2.kernel.linkGet(null, handoffPeerOf({ id: EP })), 'container end not removed as a leak');
    await assert.rejects(
      h2.controller.createSandbox({ name: 'taker3', networks: [{ network: NET, ipv4Address: '10.77.0.2' }] }),
      /Address already in use/,
    );
    // Docker deletes its network only when it has no endpoints left there: one cnm still holds is stale
    // (its DeleteEndpoint was lost while cnm was down) and goes with the network, interface and claim.
    await h2.controller.removeNetworkById(NET);
    assert.equal(await h2.kernel.linkGet(null, hostVethOf({ id: EP })), undefined);
    assert.throws(() => h2.controller.getNetwork(NET), /not found/);
  });
});
