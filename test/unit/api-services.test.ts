/**
 * Services over the API (cnm extension paths) driven by the real controller on fakes: shapes,
 * statuses and messages, membership through sandbox create and the connect body, and the network's
 * refusal to go while a service lives on it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiServer } from '../../src/api/server.js';
import { serveApi, startHarness, type Harness } from '../helpers/controller-harness.js';
import { httpRequest } from '../helpers/fake-controller.js';

describe('API: /cnm/v1/services', () => {
  let h: Harness;
  let server: ApiServer;
  let sock = '';
  const api = (method: string, path: string, body?: unknown) => httpRequest(sock, method, path, body);
  const ipOf = (sb: string) => h.controller.getSandbox(sb).endpoints[0]!.endpoint.ipv4Address!;

  before(async () => {
    h = await startHarness();
    ({ socketPath: sock, server } = await serveApi(h));
    assert.equal((await api('POST', '/networks/create', { Name: 'app', IPAM: { Config: [{ Subnet: '10.80.0.0/24' }] } })).status, 201);
  });
  after(async () => {
    await server?.close();
    await h?.cleanup();
  });

  it('creates a vip service (201) and renders it; GET by name, ID prefix and in the list', async () => {
    const r = await api('POST', '/v1.51/cnm/v1/services', { Name: 'web', Network: 'app', Ports: ['80/tcp', '53/udp'], Labels: { tier: 'front' } });
    assert.equal(r.status, 201, r.body);
    const svc = r.json();
    assert.match(svc.Id, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      { ...svc, Id: undefined, Created: undefined, VirtualIP: undefined },
      {
        Name: 'web',
        Network: { Id: h.controller.getNetwork('app').network.id, Name: 'app' },
        Mode: 'vip',
        Ports: ['80/tcp', '53/udp'],
        Labels: { tier: 'front' },
        Backends: [],
        Id: undefined,
        Created: undefined,
        VirtualIP: undefined,
        VirtualIPv6: '',
      },
    );
    assert.match(svc.VirtualIP, /^10\.80\.0\.\d+$/);
    assert.equal((await api('GET', '/cnm/v1/services/web')).json().Id, svc.Id);
    assert.equal((await api('GET', `/cnm/v1/services/${svc.Id.slice(0, 12)}`)).json().Name, 'web');
    const list = await api('GET', '/cnm/v1/services');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json().map((s: { Name: string }) => s.Name), ['web']);
    const rr = await api('POST', '/cnm/v1/services', { name: 'db', network: 'app', mode: 'dnsrr' });
    assert.equal(rr.status, 201, rr.body);
    assert.equal(rr.json().VirtualIP, '');
    assert.equal(rr.json().Mode, 'dnsrr');
  });

  it('refuses bad requests with Docker-style statuses and messages', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ Name: 'web', Network: 'app' }, 409, /^service with name web already exists$/],
      [{ Name: 'x', Network: 'nosuch' }, 404, /network nosuch not found/],
      [{ Network: 'app' }, 400, /Name/],
      [{ Name: 'x' }, 400, /Network/],
      [{ Name: 'x', Network: 'app', Mode: 'ipvs' }, 400, /Mode/],
      [{ Name: 'x', Network: 'app', Ports: ['http'] }, 400, /invalid port "http"/],
      [{ Name: 'x', Network: 'app', Ports: '80' }, 400, /Ports/],
      [{ Name: 'x', Network: 'app', Mode: 'dnsrr', Ports: ['80'] }, 400, /vip mode only/],
      [{ Name: 'x', Network: 'bridge' }, 403, /user-defined network/],
      ['{not json', 400, /.+/],
    ];
    for (const [body, status, message] of cases) {
      const r = await api('POST', '/cnm/v1/services', body);
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.body}`);
      assert.match(r.json().message, message);
    }
    const missing = await api('GET', '/cnm/v1/services/nosuch');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().message, 'No such service: nosuch');
    assert.equal((await api('DELETE', '/cnm/v1/services/nosuch')).status, 404);
    assert.equal((await api('GET', '/cnm/v1/services')).json().length, 2);
  });

  it('backends join through sandbox create and the connect body, and leave on disconnect', async () => {
    const create = await api('POST', '/cnm/v1/sandboxes', { Name: 's1', Networks: [{ Network: 'app', Services: ['web', 'db'] }] });
    assert.equal(create.status, 201, create.body);
    assert.equal((await api('POST', '/cnm/v1/sandboxes', { Name: 's2' })).status, 201);
    const connect = await api('POST', '/networks/app/connect', { Container: 's2', EndpointConfig: { CnmServices: ['web'] } });
    assert.equal(connect.status, 200, connect.body);
    const web = (await api('GET', '/cnm/v1/services/web')).json();
    assert.deepEqual(
      web.Backends.map((b: { SandboxName: string; IPv4Address: string }) => [b.SandboxName, b.IPv4Address]),
      [['s1', ipOf('s1')], ['s2', h.controller.getSandbox('s2').endpoints.find((e) => e.network.name === 'app')!.endpoint.ipv4Address]],
    );
    assert.equal(h.firewall.services.get(web.Id)!.backends.length, 2);
    assert.equal((await api('GET', '/cnm/v1/services/db')).json().Backends.length, 1);
    const wrong = await api('POST', '/cnm/v1/sandboxes', { Name: 's3', Networks: [{ Network: 'bridge', Services: ['web'] }] });
    assert.equal(wrong.status, 400, wrong.body);
    assert.match(wrong.json().message, /service web is on network app, not bridge/);
    assert.equal((await api('POST', '/networks/app/disconnect', { Container: 's2' })).status, 200);
    assert.equal((await api('GET', '/cnm/v1/services/web')).json().Backends.length, 1);
  });

  it('network rm is refused while a service lives on it; service rm is 204 and keeps the backends', async () => {
    assert.equal((await api('DELETE', '/cnm/v1/sandboxes/s1?force=1')).status, 204);
    const refused = await api('DELETE', '/networks/app');
    assert.equal(refused.status, 403);
    assert.match(refused.json().message, /has active services \(web, db\)/);
    await api('POST', '/networks/app/connect', { Container: 's2', EndpointConfig: { CnmServices: ['db'] } });
    for (const name of ['web', 'db']) {
      const r = await api('DELETE', `/cnm/v1/services/${name}`);
      assert.equal(r.status, 204, r.body);
      assert.equal(r.body, '');
    }
    assert.equal((await api('GET', '/cnm/v1/services/web')).status, 404);
    assert.equal(h.controller.getSandbox('s2').endpoints.length, 2);
    assert.equal(h.firewall.services.size, 0);
  });
});
