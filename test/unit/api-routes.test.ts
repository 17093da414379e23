/**
 * Every API route over a real unix socket, against the in-memory FakeController: handshake and
 * versioned paths, Docker's network shapes, filters, statuses, request validation, and the oversized /
 * malformed bodies (sandbox routes: api-sandboxes.test.ts). Messages written by the controller are
 * asserted against the real controller (last block), never against text the FakeController made up.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { lstat } from 'node:fs/promises';
import { startFakeApi, type FakeApi } from '../helpers/fake-controller.js';
import { startRealApi, type RealApi } from '../helpers/real-api.js';

const filters = (f: object) => encodeURIComponent(JSON.stringify(f));

describe('API: handshake, versions and routing', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi();
  });
  after(async () => api?.close());

  it('creates the socket with mode 660', async () => {
    const st = await lstat(api.socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
  });

  it('answers GET and HEAD /_ping with Docker headers', async () => {
    const get = await api.request('GET', '/_ping');
    assert.equal(get.status, 200);
    assert.equal(get.body, 'OK');
    for (const [name, value] of Object.entries({
      'api-version': '1.51',
      ostype: 'linux',
      'docker-experimental': 'false',
      'builder-version': '1',
      swarm: 'inactive',
      'cache-control': 'no-cache, no-store, must-revalidate',
      pragma: 'no-cache',
    })) {
      assert.equal(get.headers[name], value, name);
    }
    assert.match(String(get.headers.server), /^cnm\/0\.1\.0-test/);
    const head = await api.request('HEAD', '/_ping');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '0');
  });

  it('serves /v1.40 … /v1.51 and unversioned paths; refuses others with Docker’s messages', async () => {
    for (const v of ['1.40', '1.44', '1.50', '1.51']) assert.equal((await api.request('GET', `/v${v}/_ping`)).status, 200, v);
    const old = await api.request('GET', '/v1.39/networks');
    assert.equal(old.status, 400);
    assert.equal(
      old.json().message,
      'client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version',
    );
    const young = await api.request('GET', '/v1.52/networks');
    assert.equal(young.status, 400);
    assert.equal(young.json().message, 'client version 1.52 is too new. Maximum supported API version is 1.51');
  });

  it('renders /version and /info', async () => {
    const v = (await api.request('GET', '/v1.50/version')).json();
    assert.equal(v.Platform.Name, 'cnm');
    assert.equal(v.ApiVersion, '1.51');
    assert.equal(v.MinAPIVersion, '1.40');
    assert.equal(v.Version, '0.1.0-test');
    assert.equal(v.Os, 'linux');
    assert.equal(v.Components[0].Name, 'Engine');
    assert.ok(v.KernelVersion.length > 0);
    const info = (await api.request('GET', '/info')).json();
    assert.equal(info.OSType, 'linux');
    assert.equal(info.Swarm.LocalNodeState, 'inactive');
    assert.equal(info.Swarm.ControlAvailable, false);
    assert.equal(info.ServerVersion, '0.1.0-test');
    assert.equal(info.CnmNetworks, 3);
    assert.deepEqual(info.Plugins.Network, ['bridge', 'fake', 'host', 'null'], 'the controller\'s registered drivers');
  });

  it('answers unknown paths 404, wrong methods 405 and other container routes 501', async () => {
    const nf = await api.request('GET', '/images/json');
    assert.equal(nf.status, 404);
    assert.equal(nf.json().message, 'page not found');
    assert.equal((await api.request('PUT', '/networks')).status, 405);
    const start = await api.request('POST', '/containers/abc/start');
    assert.equal(start.status, 501);
    assert.match(start.json().message, /sandbox/);
    assert.equal((await api.request('POST', '/v1.50/containers/create', {})).status, 501);
  });

  it('removes a stale socket file left by a crash, and refuses a live one', async () => {
    const { startApiServer } = await import('../../src/api/server.js');
    const { silentLogger } = await import('../../src/util/log.js');
    const opts = {
      controller: api.controller,
      socketPath: api.socketPath,
      logger: silentLogger,
      version: 'x',
      daemon: { pid: 1, rootDir: '/', execRoot: '/' },
    };
    await assert.rejects(startApiServer(opts), /in use/);
    // A socket file nobody listens on: a process that listened and was killed leaves it behind.
    const stalePath = `${api.dir}/stale.sock`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => console.log('up'))`]);
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok((await lstat(stalePath)).isSocket());
    const server = await startApiServer({ ...opts, socketPath: stalePath });
    assert.equal((await (await import('../helpers/fake-controller.js')).httpRequest(stalePath, 'GET', '/_ping')).body, 'OK');
    await server.close();
  });
});

describe('API: networks', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi();
    await api.controller.createSandbox({ name: 'web' });
  });
  after(async () => api?.close());

  it('creates a network from Docker’s body (201 {Id, Warning}) and passes every field on', async () => {
    const r = await api.request('POST', '/v1.50/networks/create', {
      Name: 'front',
      Driver: 'bridge',
      Scope: 'local',
      EnableIPv4: true,
      EnableIPv6: false,
      IPAM: {
        Driver: 'default',
        Options: { o: '1' },
        Config: [{ Subnet: '10.30.0.0/24', IPRange: '10.30.0.128/25', Gateway: '10.30.0.254', AuxiliaryAddresses: { r: '10.30.0.5' } }],
      },
      Internal: true,
      Attachable: true,
      Ingress: false,
      ConfigOnly: false,
      ConfigFrom: null,
      Options: { 'com.docker.network.bridge.name': 'cnmfront' },
      Labels: { team: 'a', tier: 'web' },
      CheckDuplicate: true,
    });
    assert.equal(r.status, 201, r.body);
    assert.match(r.json().Id, /^[0-9a-f]{64}$/);
    assert.equal(r.json().Warning, '');
    assert.deepEqual(api.controller.calls.at(-1), {
      method: 'createNetwork',
      args: [
        {
          name: 'front',
          driver: 'bridge',
          scope: 'local',
          internal: true,
          attachable: true,
          ingress: false,
          configOnly: false,
          enableIPv4: true,
          enableIPv6: false,
          ipam: {
            driver: 'default',
            configs: [{ subnet: '10.30.0.0/24', ipRange: '10.30.0.128/25', gateway: '10.30.0.254', auxAddresses: { r: '10.30.0.5' } }],
            options: { o: '1' },
          },
          options: { 'com.docker.network.bridge.name': 'cnmfront' },
          labels: { team: 'a', tier: 'web' },
        },
      ],
    });
  });

  it('ignores EnableIPv4 from clients older than API 1.48, matches field names case-insensitively', async () => {
    const r = await api.request('POST', '/v1.47/networks/create', { name: 'old', enableipv4: false, configFrom: { network: 'cfg' } });
    assert.equal(r.status, 201, r.body);
    const req = api.controller.calls.at(-1)!.args[0] as Record<string, unknown>;
    assert.equal(req.name, 'old');
    assert.equal(req.enableIPv4, undefined);
    assert.equal(req.configFrom, 'cfg');
  });

  it('shows the full network object on inspect, found by name, full ID and ID prefix', async () => {
    await api.request('POST', '/networks/front/connect', { Container: 'web', EndpointConfig: { Aliases: ['w'] } });
    const net = (await api.request('GET', '/networks/front')).json();
    const id = net.Id as string;
    assert.deepEqual((await api.request('GET', `/networks/${id}`)).json().Name, 'front');
    assert.deepEqual((await api.request('GET', `/networks/${id.slice(0, 6)}`)).json().Name, 'front');
    assert.deepEqual(Object.keys(net), [
      'Name', 'Id', 'Created', 'Scope', 'Driver', 'EnableIPv4', 'EnableIPv6', 'IPAM', 'Internal', 'Attachable',
      'Ingress', 'ConfigFrom', 'ConfigOnly', 'Options', 'Labels', 'Containers',
    ]);
    assert.match(net.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.deepEqual(net.IPAM, {
      Driver: 'default',
      Options: { o: '1' },
      Config: [{ Subnet: '10.30.0.0/24', IPRange: '10.30.0.128/25', Gateway: '10.30.0.254', AuxiliaryAddresses: { r: '10.30.0.5' } }],
    });
    assert.deepEqual(net.ConfigFrom, { Network: '' });
    const web = api.controller.getSandbox('web').sandbox;
    const entry = net.Containers[web.id];
    assert.equal(entry.Name, 'web');
    assert.match(entry.EndpointID, /^[0-9a-f]{64}$/);
    assert.match(entry.MacAddress, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(entry.IPv4Address, '10.30.0.2/24');
    assert.equal(entry.IPv6Address, '');
  });

  it('lists networks without Containers', async () => {
    const list = (await api.request('GET', '/networks')).json() as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((n) => n.Name).sort(), ['bridge', 'front', 'host', 'none', 'old']);
    assert.ok(list.every((n) => !('Containers' in n)));
  });

  it('filters the list by driver, name, id, label, scope, type and dangling', async () => {
    const names = async (f: object) =>
      ((await api.request('GET', `/networks?filters=${filters(f)}`)).json() as Array<{ Name: string }>).map((n) => n.Name).sort();
    const front = api.controller.getNetwork('front').network;
    assert.deepEqual(await names({ driver: { null: true } }), ['none']);
    assert.deepEqual(await names({ name: { ro: true } }), ['front']);
    assert.deepEqual(await names({ name: ['^o'] }), ['old']);
    assert.deepEqual(await names({ id: { [front.id.slice(0, 8)]: true } }), ['front']);
    assert.deepEqual(await names({ label: { team: true } }), ['front']);
    assert.deepEqual(await names({ label: { 'team=b': true } }), []);
    assert.deepEqual(await names({ label: { 'team=a': true, 'tier=web': true } }), ['front']);
    assert.deepEqual(await names({ scope: { local: true } }), ['bridge', 'front', 'host', 'none', 'old']);
    assert.deepEqual(await names({ type: { builtin: true } }), ['bridge', 'host', 'none']);
    assert.deepEqual(await names({ type: { custom: true } }), ['front', 'old']);
    assert.deepEqual(await names({ dangling: { true: true } }), ['old']);
    assert.deepEqual(await names({ dangling: ['false'] }), ['bridge', 'front', 'host', 'none']);
  });

  it('refuses bad filters with Docker’s messages', async () => {
    const bad = async (raw: string) => (await api.request('GET', `/networks?filters=${encodeURIComponent(raw)}`)).json().message;
    assert.equal(await bad('{"colour":{"red":true}}'), "invalid filter 'colour'");
    assert.equal(await bad('{"type":{"other":true}}'), "invalid filter: 'type'='other'");
    assert.equal(await bad('{"dangling":{"maybe":true}}'), 'invalid value for filter \'dangling\', must be "true" (or "1"), or "false" (or "0")');
    assert.equal(await bad('not json'), 'invalid filter');
    assert.equal((await api.request('GET', `/networks?filters=${filters({ colour: ['x'] })}`)).status, 400);
  });

  it('answers 500 with the message for unexpected errors', async () => {
    const original = api.controller.listNetworks;
    api.controller.listNetworks = () => {
      throw new TypeError('boom');
    };
    try {
      const r = await api.request('GET', '/networks');
      assert.equal(r.status, 500);
      assert.equal(r.json().message, 'boom');
    } finally {
      api.controller.listNetworks = original;
    }
  });

  it('connects with Docker’s EndpointConfig and disconnects with Force', async () => {
    await api.controller.createSandbox({ name: 'db', networks: [{ network: 'old' }] });
    const r = await api.request('POST', '/v1.50/networks/front/connect', {
      Container: 'db',
      EndpointConfig: {
        IPAMConfig: { IPv4Address: '10.30.0.77', IPv6Address: '', LinkLocalIPs: null },
        Links: null,
        Aliases: ['database', 'pg'],
        MacAddress: '02:00:00:00:00:77',
        DriverOpts: { 'com.docker.network.endpoint.ifname': 'data0' },
        GwPriority: -5,
        NetworkID: '',
        IPAddress: '',
      },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, '');
    assert.deepEqual(api.controller.calls.at(-1), {
      method: 'connect',
      args: [
        {
          network: 'front',
          sandbox: 'db',
          ipv4Address: '10.30.0.77',
          aliases: ['database', 'pg'],
          macAddress: '02:00:00:00:00:77',
          driverOpts: { 'com.docker.network.endpoint.ifname': 'data0' },
          gwPriority: -5,
        },
      ],
    });
    const d = await api.request('POST', '/networks/front/disconnect', { Container: 'db', Force: true });
    assert.equal(d.status, 200, d.body);
    assert.deepEqual(api.controller.calls.at(-1), { method: 'disconnect', args: ['front', 'db', true] });
    const missing = await api.request('POST', '/networks/front/connect', { Container: 'ghost' });
    assert.equal(missing.status, 404);
    assert.equal((await api.request('POST', '/networks/front/connect', {})).status, 400);
  });

  it('deletes a network (204) and prunes with until / label / label! filters', async () => {
    await api.request('POST', '/networks/front/disconnect', { Container: 'web' });
    assert.equal((await api.request('DELETE', '/networks/front')).status, 204);
    assert.equal((await api.request('DELETE', '/networks/front')).status, 404);
    for (const [name, labels] of [['p1', { keep: 'yes' }], ['p2', { env: 'dev' }], ['p3', {}]] as const) {
      await api.request('POST', '/networks/create', { Name: name, Labels: labels });
    }
    const none = await api.request('POST', `/networks/prune?filters=${filters({ until: { '1h': true } })}`);
    assert.deepEqual(none.json(), { NetworksDeleted: [] });
    const byLabel = await api.request('POST', `/networks/prune?filters=${filters({ label: { env: true } })}`);
    assert.deepEqual(byLabel.json(), { NetworksDeleted: ['p2'] });
    const notKeep = await api.request('POST', `/networks/prune?filters=${filters({ 'label!': { 'keep=yes': true } })}`);
    assert.deepEqual(notKeep.json().NetworksDeleted.sort(), ['p3']);
    const bad = await api.request('POST', `/networks/prune?filters=${filters({ driver: { bridge: true } })}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json().message, "invalid filter 'driver'");
    const badUntil = await api.request('POST', `/networks/prune?filters=${filters({ until: { soon: true } })}`);
    assert.equal(badUntil.status, 400);
    const all = await api.request('POST', '/v1.50/networks/prune');
    // Only unused user networks go: "old" still has db on it.
    assert.deepEqual(all.json().NetworksDeleted.sort(), ['p1']);
    assert.ok(api.controller.getNetwork('old'));
  });
});

describe('API: request bodies', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi();
  });
  after(async () => api?.close());

  it('refuses malformed JSON, wrong types (naming the field) and other content types', async () => {
    const malformed = await api.request('POST', '/networks/create', '{"Name": ');
    assert.equal(malformed.status, 400);
    assert.match(malformed.json().message, /^invalid JSON/);
    const wrongType = await api.request('POST', '/networks/create', { Name: 'x', Internal: 'yes' });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.json().message, /field Internal/);
    const nested = await api.request('POST', '/networks/create', { Name: 'x', IPAM: { Config: [{ Subnet: 10 }] } });
    assert.match(nested.json().message, /field IPAM\.Config\[0\]\.Subnet/);
    const labels = await api.request('POST', '/networks/create', { Name: 'x', Labels: { a: 1 } });
    assert.match(labels.json().message, /field Labels\.a/);
    const gw = await api.request('POST', '/networks/n/connect', { Container: 'x', EndpointConfig: { GwPriority: 1.5 } });
    assert.match(gw.json().message, /field EndpointConfig\.GwPriority/);
    const form = await api.request('POST', '/networks/create', 'Name=x', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 400);
    assert.match(form.json().message, /unsupported Content-Type/);
    assert.equal(api.controller.calls.filter((c) => c.method === 'createNetwork').length, 0);
  });

  it('treats an empty body as defaults and ignores unknown fields', async () => {
    const empty = await api.request('POST', '/networks/create');
    assert.equal(empty.status, 400, 'the message is the controller\'s: see the real-controller block below');
    const extra = await api.request('POST', '/networks/create', { Name: 'ok', Whatever: { deep: [1] } });
    assert.equal(extra.status, 201);
  });

  it('refuses a body over 1 MiB with Content-Length without reading it', async () => {
    const huge = JSON.stringify({ Name: 'huge', Labels: { x: 'y'.repeat(2 * 1024 * 1024) } });
    const r = await api.request('POST', '/networks/create', huge);
    assert.equal(r.status, 400);
    assert.match(r.json().message, /too large/);
  });

  it('reads a body that arrives with its head and one that trickles in alike, also pipelined on one connection', async () => {
    // Two requests in one write: each body is already in the parser's buffer when its handler runs.
    const one = (name: string) => {
      const body = JSON.stringify({ Name: name, Labels: { from: 'pipelined' } });
      return `POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    const replies = await new Promise<string>((resolve, reject) => {
      const socket = createConnection(api.socketPath, () => socket.end(one('piped-a') + one('piped-b')));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.equal(replies.match(/^HTTP\/1\.1 201/gm)?.length, 2, replies);
    // A body sent after its head, in two parts with a pause between them.
    const trickled = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: api.socketPath, method: 'POST', path: '/networks/create', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.flushHeaders();
      setTimeout(() => req.write('{"Name":"trick'), 30);
      setTimeout(() => req.end('led","Labels":{"from":"pieces"}}'), 60);
    });
    assert.equal(trickled, 201);
    for (const [name, from] of [['piped-a', 'pipelined'], ['piped-b', 'pipelined'], ['trickled', 'pieces']]) {
      const got = await api.request('GET', `/networks/${name}`);
      assert.equal(got.status, 200, name);
      assert.deepEqual(got.json().Labels, { from }, name);
    }
  });

  it('refuses a chunked body once it passes 1 MiB, and still answers', async () => {
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath: api.socketPath, method: 'POST', path: '/networks/create', headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write('{"Name":"chunky","Labels":{"x":"');
      const chunk = 'z'.repeat(64 * 1024);
      for (let i = 0; i < 24; i++) req.write(chunk);
      req.end('"}}');
    });
    assert.equal(result.status, 400);
    assert.match(JSON.parse(result.body).message, /too large/);
    assert.equal((await api.request('GET', '/networks/chunky')).status, 404);
  });
});

describe('API: controller errors reach the client with their status and message (real controller)', () => {
  let api: RealApi;
  before(async () => {
    api = await startRealApi();
    assert.equal((await api.request('POST', '/networks/create', { Name: 'front', IPAM: { Config: [{ Subnet: '10.10.0.0/24' }] } })).status, 201);
    assert.equal((await api.request('POST', '/cnm/v1/sandboxes', { Name: 'web', Networks: [{ Network: 'front' }] })).status, 201);
  });
  after(async () => api?.close());

  it('maps controller errors to their statuses and messages', async () => {
    const front = api.controller.getNetwork('front').network.id;
    const missing = await api.request('GET', '/networks/ghost');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json(), { message: 'network ghost not found' });
    const dup = await api.request('POST', '/networks/create', { Name: 'front' });
    assert.equal(dup.status, 409);
    assert.equal(dup.json().message, 'network with name front already exists');
    const predefined = await api.request('POST', '/networks/create', { Name: 'bridge' });
    assert.equal(predefined.status, 403);
    assert.equal(predefined.json().message, 'bridge is a pre-defined network and cannot be created');
    const plugin = await api.request('POST', '/networks/create', { Name: 'x', Driver: 'nope' });
    assert.equal(plugin.status, 404);
    assert.equal(plugin.json().message, 'plugin "nope" not found');
    const inUse = await api.request('DELETE', '/networks/front');
    assert.equal(inUse.status, 403);
    assert.equal(inUse.json().message, `error while removing network: network front id ${front} has active endpoints (web)`);
    const twice = await api.request('POST', '/networks/front/connect', { Container: 'web' });
    assert.equal(twice.status, 403);
    assert.equal(twice.json().message, 'endpoint with name web already exists in network front');
    assert.equal((await api.request('GET', '/networks/front?scope=swarm')).status, 404);
    assert.equal((await api.request('GET', '/networks/front?verbose=maybe')).status, 400);
    const empty = await api.request('POST', '/networks/create');
    assert.equal(empty.status, 400);
    assert.equal(empty.json().message, 'invalid network name "": must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$');
    // None of the refused requests changed anything.
    assert.deepEqual(api.controller.listNetworks().map((n) => n.network.name).sort(), ['bridge', 'front', 'host', 'none']);
    assert.equal(api.controller.getNetwork('front').endpoints.length, 1);
  });
});
