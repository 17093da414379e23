/**
 * Sandboxes over the API against the real controller (recording kernel, memory store): the cnm extension
 * routes and the Docker container views, with the paths and messages cnm itself produces.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startRealApi, type RealApi } from '../helpers/real-api.js';

const filters = (f: object) => encodeURIComponent(JSON.stringify(f));

describe('API: sandboxes and their container views', () => {
  let api: RealApi;
  before(async () => {
    api = await startRealApi();
    await api.request('POST', '/networks/create', { Name: 'app', IPAM: { Config: [{ Subnet: '10.40.0.0/24' }] } });
    await api.request('POST', '/networks/create', { Name: 'sealed', Internal: true, IPAM: { Config: [{ Subnet: '10.41.0.0/24' }] } });
  });
  after(async () => api?.close());

  it('creates a sandbox from the cnm body (201) and renders it', async () => {
    const r = await api.request('POST', '/cnm/v1/sandboxes', {
      Name: 'api1',
      Hostname: 'api-host',
      Networks: [
        { Network: 'app', IPv4Address: '10.40.0.9', Aliases: ['api'], GwPriority: 3, DriverOpts: { k: 'v' } },
        { Network: 'sealed' },
      ],
      Labels: { role: 'api' },
      Dns: ['1.1.1.1'],
      DnsSearch: ['example.test'],
      DnsOptions: ['ndots:2'],
    });
    assert.equal(r.status, 201, r.body);
    const sb = r.json();
    assert.deepEqual(api.controller.calls.at(-1)!.args[0], {
      name: 'api1',
      hostname: 'api-host',
      networks: [
        { network: 'app', ipv4Address: '10.40.0.9', aliases: ['api'], gwPriority: 3, driverOpts: { k: 'v' } },
        { network: 'sealed' },
      ],
      labels: { role: 'api' },
      dns: ['1.1.1.1'],
      dnsSearch: ['example.test'],
      dnsOptions: ['ndots:2'],
    });
    assert.match(sb.Id, /^[0-9a-f]{64}$/);
    assert.equal(sb.Name, 'api1');
    assert.equal(sb.Hostname, 'api-host');
    assert.equal(sb.NetnsPath, `${api.harness.execRoot}/netns/${sb.Id}`);
    assert.equal(sb.Adopted, false);
    assert.equal(sb.HostNetwork, false);
    assert.equal(sb.ResolvConfPath, `${api.harness.execRoot}/sandboxes/${sb.Id}/resolv.conf`);
    assert.match(readFileSync(sb.ResolvConfPath, 'utf8'), /nameserver 127\.0\.0\.11/, 'the file the controller wrote');
    assert.equal(sb.DaemonPid, process.pid);
    assert.deepEqual(sb.Dns, { Servers: ['1.1.1.1'], Search: ['example.test'], Options: ['ndots:2'] });
    const app = sb.Networks.app;
    assert.equal(app.NetworkID, api.controller.getNetwork('app').network.id);
    assert.equal(app.IPAddress, '10.40.0.9');
    assert.equal(app.IPPrefixLen, 24);
    assert.equal(app.Gateway, '10.40.0.1');
    assert.deepEqual(app.Aliases, ['api']);
    assert.equal(app.InterfaceName, 'eth0');
    // The veth's host end, as the kernel holds it: a port of the network's bridge with that MAC.
    const hostEnd = await api.harness.kernel.linkGet(null, app.HostInterfaceName);
    assert.ok(hostEnd, `host interface ${JSON.stringify(app.HostInterfaceName)} exists`);
    assert.deepEqual([hostEnd.kind, hostEnd.mac], ['veth', app.HostMacAddress]);
    assert.match(hostEnd.master ?? '', /^cnm/);
    assert.equal(app.HostBridgeName, hostEnd.master, 'the bridge it is a port of');
    assert.equal(app.GwPriority, 3);
    assert.deepEqual(app.DriverOpts, { k: 'v' });
    // Internal networks give no default route: no gateway shown.
    assert.equal(sb.Networks.sealed.Gateway, '');
    assert.equal(sb.Networks.sealed.InterfaceName, 'eth1');
  });

  it('follows an adopted namespace with NetnsFollow, says so, and reports its kernel state at /check', async () => {
    await api.harness.kernel.createNetns('/ext/api-follow');
    const bad = await api.request('POST', '/cnm/v1/sandboxes', { Name: 'fol', NetnsFollow: 'yes' });
    assert.equal(bad.status, 400, bad.body);
    assert.match(bad.json().message, /field NetnsFollow/);
    const r = await api.request('POST', '/cnm/v1/sandboxes', { Name: 'fol', NetnsPath: '/ext/api-follow', NetnsFollow: true, Networks: [{ Network: 'app' }] });
    assert.equal(r.status, 201, r.body);
    assert.equal((api.controller.calls.at(-1)!.args[0] as { netnsFollow?: boolean }).netnsFollow, true);
    assert.equal(r.json().NetnsFollow, true);
    assert.equal(r.json().NetnsPath, '/ext/api-follow');
    const check = await api.request('GET', '/cnm/v1/sandboxes/fol/check');
    assert.equal(check.status, 200, check.body);
    assert.deepEqual(check.json(), { Intact: true, Problems: [] });
    const address = r.json().Networks.app.IPAddress as string;
    await api.harness.kernel.addrDel('/ext/api-follow', 'eth0', `${address}/24`);
    const broken = (await api.request('GET', '/cnm/v1/sandboxes/fol/check')).json();
    assert.deepEqual(broken, { Intact: false, Problems: ['interface eth0 on network app is missing or not as cnm configured it'] });
    assert.equal((await api.request('GET', '/cnm/v1/sandboxes/nonesuch/check')).status, 404);
    assert.equal((await api.request('DELETE', '/cnm/v1/sandboxes/fol')).status, 204);
  });

  it('lists, gets by name / prefix, and deletes with ?force', async () => {
    await api.request('POST', '/cnm/v1/sandboxes', { Name: 'api2' });
    const list = (await api.request('GET', '/cnm/v1/sandboxes')).json() as Array<{ Name: string; Id: string }>;
    assert.deepEqual(list.map((s) => s.Name).sort(), ['api1', 'api2']);
    const id = list.find((s) => s.Name === 'api2')!.Id;
    assert.equal((await api.request('GET', `/cnm/v1/sandboxes/${id.slice(0, 7)}`)).json().Name, 'api2');
    assert.equal((await api.request('GET', '/cnm/v1/sandboxes/nope')).status, 404);
    assert.equal((await api.request('POST', '/cnm/v1/sandboxes', { Name: 'api2' })).status, 409);
    assert.equal((await api.request('POST', '/cnm/v1/sandboxes', { Networks: [{ IPv4Address: '1.2.3.4' }] })).status, 400);
    assert.equal((await api.request('DELETE', '/cnm/v1/sandboxes/api2?force=1')).status, 204);
    assert.deepEqual(api.controller.calls.filter((c) => c.method === 'removeSandbox').at(-1), { method: 'removeSandbox', args: ['api2', true] });
    assert.equal((await api.request('DELETE', '/cnm/v1/sandboxes/api2')).status, 404);
  });

  it('shows sandboxes as running containers in GET /containers/json', async () => {
    const list = (await api.request('GET', '/v1.50/containers/json?all=1')).json();
    assert.equal(list.length, 1);
    const c = list[0];
    assert.deepEqual(c.Names, ['/api1']);
    assert.equal(c.State, 'running');
    assert.match(c.Status, /^Up /);
    assert.equal(typeof c.Created, 'number');
    assert.deepEqual(c.Ports, []);
    assert.deepEqual(c.Labels, { role: 'api' });
    assert.equal(c.HostConfig.NetworkMode, 'app');
    assert.equal(c.NetworkSettings.Networks.app.IPAddress, '10.40.0.9');
    assert.deepEqual(c.NetworkSettings.Networks.app.IPAMConfig, { IPv4Address: '10.40.0.9' });
    assert.deepEqual(c.NetworkSettings.Networks.app.DNSNames, ['api1', 'api', c.Id.slice(0, 12)]);
    const byNet = async (f: object) => (await api.request('GET', `/containers/json?filters=${filters(f)}`)).json().length;
    assert.equal(await byNet({ network: { sealed: true } }), 1);
    assert.equal(await byNet({ network: { bridge: true } }), 0);
    assert.equal(await byNet({ name: { api: true } }), 1);
    assert.equal(await byNet({ label: { 'role=db': true } }), 0);
    assert.equal(await byNet({ status: { exited: true } }), 0);
    assert.equal((await api.request('GET', `/containers/json?filters=${filters({ ancestor: { x: true } })}`)).status, 400);
  });

  it('inspects a sandbox as a container, and says "No such container" for others', async () => {
    const c = (await api.request('GET', '/containers/api1/json')).json();
    assert.equal(c.Name, '/api1');
    assert.equal(c.State.Running, true);
    assert.equal(c.Config.Hostname, 'api-host');
    assert.equal(c.NetworkSettings.SandboxKey, `${api.harness.execRoot}/netns/${c.Id}`);
    assert.equal(c.NetworkSettings.Networks.app.Gateway, '10.40.0.1');
    assert.equal(c.NetworkSettings.Networks.app.MacAddress.length, 17);
    assert.equal(c.HostsPath, `${api.harness.execRoot}/sandboxes/${c.Id}/hosts`);
    assert.match(readFileSync(c.HostsPath, 'utf8'), /10\.40\.0\.9\s+api-host/, 'the hosts file the controller wrote');
    const missing = await api.request('GET', '/containers/ghost/json');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().message, 'No such container: ghost');
  });
});
