/**
 * The API layer over a real unix socket, driven by the real controller on fakes (recording kernel,
 * in-memory store): Docker's handshake, versioned paths, shapes, statuses, validation, events.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ApiServer } from '../../src/api/server.js';
import { serveApi, startHarness, type Harness } from '../helpers/controller-harness.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

function call(socketPath: string, method: string, path: string, body?: string | Buffer): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('Docker Engine API', () => {
  let h: Harness;
  let server: ApiServer;
  let sock: string;
  const api = (method: string, path: string, body?: unknown) =>
    call(sock, method, path, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));

  before(async () => {
    h = await startHarness();
    ({ socketPath: sock, server } = await serveApi(h));
  });
  after(async () => {
    await server?.close();
    await h?.cleanup();
  });

  it('answers the handshake with Docker headers', async () => {
    const r = await api('GET', '/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'OK');
    assert.equal(r.headers['api-version'], '1.51');
    assert.equal(r.headers['ostype'], 'linux');
    const head = await api('HEAD', '/_ping');
    assert.equal(head.status, 200);
    const v = (await api('GET', '/v1.45/version')).json();
    assert.equal(v.ApiVersion, '1.51');
    assert.equal(v.MinAPIVersion, '1.40');
  });

  it('rejects API versions outside 1.40–1.51 with 400', async () => {
    assert.equal((await api('GET', '/v1.39/networks')).status, 400);
    assert.equal((await api('GET', '/v1.52/networks')).status, 400);
    assert.equal((await api('GET', '/v1.40/networks')).status, 200);
  });

  it('creates, finds by ID prefix and name, and refuses duplicates', async () => {
    const r = await api('POST', '/v1.50/networks/create', { Name: 'apinet', IPAM: { Config: [{ Subnet: '10.80.0.0/24' }] }, Labels: { a: 'b' } });
    assert.equal(r.status, 201, r.body);
    const id: string = r.json().Id;
    const byPrefix = await api('GET', `/networks/${id.slice(0, 5)}`);
    assert.equal(byPrefix.json().Name, 'apinet');
    const net = (await api('GET', '/networks/apinet')).json();
    assert.equal(net.Id, id);
    assert.equal(net.IPAM.Config[0].Gateway, '10.80.0.1');
    assert.deepEqual(net.Labels, { a: 'b' });
    assert.match(net.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const dup = await api('POST', '/networks/create', { Name: 'apinet' });
    assert.equal(dup.status, 409);
    assert.match(dup.json().message, /already exists/);
    const missing = await api('GET', '/networks/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().message, 'network nope not found');
  });

  it('validates bodies: malformed, wrong types, oversized → 400 and nothing created', async () => {
    const before = (await api('GET', '/networks')).json().length;
    assert.equal((await api('POST', '/networks/create', '{"Name": ')).status, 400);
    const wrong = await api('POST', '/networks/create', { Name: 'typed', Internal: 'yes' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json().message, /Internal/);
    const huge = JSON.stringify({ Name: 'huge', Labels: { x: 'y'.repeat(2 * 1024 * 1024) } });
    assert.equal((await api('POST', '/networks/create', huge)).status, 400);
    assert.equal((await api('GET', '/networks')).json().length, before);
  });

  it('filters the network list and rejects unknown filters', async () => {
    const f = (x: object) => `/networks?filters=${encodeURIComponent(JSON.stringify(x))}`;
    const bridges = (await api('GET', f({ driver: { bridge: true } }))).json().map((n: any) => n.Name).sort();
    assert.deepEqual(bridges, ['apinet', 'bridge']);
    assert.deepEqual((await api('GET', f({ type: { custom: true } }))).json().map((n: any) => n.Name), ['apinet']);
    assert.deepEqual((await api('GET', f({ label: { 'a=b': true } }))).json().map((n: any) => n.Name), ['apinet']);
    assert.equal((await api('GET', f({ colour: { red: true } }))).status, 400);
  });

  it('connects a sandbox by name and shows it under Containers', async () => {
    assert.equal((await api('POST', '/cnm/v1/sandboxes', { Name: 'web' })).status, 201);
    const r = await api('POST', '/networks/apinet/connect', { Container: 'web', EndpointConfig: { IPAMConfig: { IPv4Address: '10.80.0.7' } } });
    assert.equal(r.status, 200, r.body);
    const net = (await api('GET', '/networks/apinet')).json();
    const entry = Object.values(net.Containers as Record<string, any>)[0];
    assert.equal(entry.Name, 'web');
    assert.equal(entry.IPv4Address, '10.80.0.7/24');
    assert.equal((await api('DELETE', '/networks/apinet')).status, 403);
    assert.equal((await api('POST', '/networks/apinet/connect', { Container: 'ghost' })).status, 404);
    assert.equal((await api('POST', '/networks/apinet/disconnect', { Container: 'web' })).status, 200);
    assert.equal((await api('DELETE', '/networks/apinet')).status, 204);
  });

  it('streams network events', async () => {
    const events: any[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: sock, path: `/events?filters=${encodeURIComponent('{"type":["network"]}')}` }, (res) => {
        res.on('data', (d: Buffer) => {
          for (const line of d.toString().split('\n').filter(Boolean)) events.push(JSON.parse(line));
          if (events.length >= 2) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    await api('POST', '/networks/create', { Name: 'evnet' });
    await api('DELETE', '/networks/evnet');
    await done;
    assert.deepEqual(events.map((e) => [e.Type, e.Action, e.Actor.Attributes.name]), [
      ['network', 'create', 'evnet'],
      ['network', 'destroy', 'evnet'],
    ]);
  });
});
