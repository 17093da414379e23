/**
 * Hostile and careless clients against a real daemon over its unix socket: malformed request lines,
 * headers, chunked bodies, escapes, filters and JSON bodies each get a 4xx with {"message"}, a filter
 * pattern that makes a backtracking engine run forever is answered at once, and after every case the
 * same daemon process still answers.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { messageOf, rawRequest, type RawResponse } from '../helpers/raw-http.js';

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: cnm\r\nConnection: close\r\n\r\n`;
const post = (target: string, body: string, type = 'application/json') =>
  `POST ${target} HTTP/1.1\r\nHost: cnm\r\nConnection: close\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('hostile requests against a real daemon', () => {
  let d: TestDaemon;
  let pid: number;

  before(async () => {
    d = await startTestDaemon();
    pid = d.pid();
    assert.equal((await d.api('POST', '/networks/create', { Name: 'hnet' })).status, 201);
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'hsb', Networks: [{ Network: 'none' }] })).status, 201);
  });
  after(async () => d?.cleanup());

  /** The same process, still serving: the probe that every negative case is checked against. */
  async function assertAlive(what: string): Promise<void> {
    const ping = await d.api('GET', '/_ping').catch((err: Error) => ({ status: 0, body: err.message }));
    assert.equal(ping.status, 200, `daemon no longer answers after ${what}: ${ping.body}\n${d.logs().slice(-3000)}`);
    assert.equal(d.pid(), pid);
  }

  async function expect4xx(what: string, data: string | Buffer, status?: number): Promise<RawResponse> {
    const r = await rawRequest(d.socket, data);
    if (status !== undefined) assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
    else assert.ok(r.status >= 400 && r.status < 500, `${what}: expected a 4xx, got ${JSON.stringify(r.text.slice(0, 300))}`);
    assert.ok(messageOf(r).length > 0, `${what}: no message`);
    await assertAlive(what);
    return r;
  }

  it('answers malformed request targets with a 4xx and keeps running (GET //[ used to kill it)', async () => {
    // Control: a well-formed raw request through the same helper succeeds.
    assert.equal((await rawRequest(d.socket, get('/networks/hnet'))).status, 200);
    await expect4xx('GET //[', get('//['));
    await expect4xx('bad escape in path', get('/networks/%zz'), 400);
    await expect4xx('non-UTF-8 escape in path', get('/networks/%ff%fe'), 400);
    await expect4xx('bad escape in query', get('/networks?filters=%zz'), 400);
    await expect4xx('non-UTF-8 escape in query', get('/networks?filters=%c3%28'), 400);
    await expect4xx('raw non-UTF-8 bytes in the path', Buffer.concat([Buffer.from('GET /networks/'), Buffer.from([0xff, 0xfe]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]));
    await expect4xx('asterisk-form', get('*'), 400);
    await expect4xx('no path at all', 'GET  HTTP/1.1\r\nHost: x\r\n\r\n');
    await expect4xx('not HTTP', 'HELLO\r\n\r\n', 400);
    await expect4xx('absolute-form to a missing page', get('http://cnm/nowhere'), 404);
    assert.equal((await rawRequest(d.socket, get('http://cnm/networks/hnet'))).status, 200);
  });

  it('answers absurd headers and bodies with a 4xx', async () => {
    await expect4xx('header line without a colon', 'GET /_ping HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', 400);
    await expect4xx('space in a header name', 'GET /_ping HTTP/1.1\r\nBad Header: x\r\n\r\n', 400);
    await expect4xx('negative Content-Length', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400);
    await expect4xx('two different Content-Lengths', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}', 400);
    await expect4xx('Content-Length with chunked', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400);
    await expect4xx('invalid chunk size', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400);
    await expect4xx('chunk longer than announced', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{"Name":"x"}\r\n0\r\n\r\n', 400);
    await expect4xx('a 64 KiB header', `GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431);
    await expect4xx('20,000 tiny headers', `GET /_ping HTTP/1.1\r\nHost: x\r\n${'X: y\r\n'.repeat(20_000)}\r\n`, 431);
    await expect4xx('a Content-Length of 10^20', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000000000\r\n\r\n', 400);
    await expect4xx('a body declared over the limit', 'POST /networks/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{', 400);
    await expect4xx('a body that is not JSON', post('/networks/create', '{"Name":'), 400);
    await expect4xx('a body that is not UTF-8 JSON', Buffer.concat([Buffer.from(post('/networks/create', '{"Name":"xx"}').replace('"xx"', '"\u00ff\u00fe"'), 'latin1')]), 400);
    await expect4xx('a body of another media type', post('/networks/create', '{"Name":"x"}', 'text/plain'), 400);
    // Non-UTF-8 bytes in a header value are legal (obs-text): answered normally.
    const obs = await rawRequest(d.socket, Buffer.concat([Buffer.from('GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Odd: '), Buffer.from([0xff, 0xc3]), Buffer.from('\r\n\r\n')]));
    assert.equal(obs.status, 200);
    await assertAlive('obs-text header');
  });

  it('answers filters that are not JSON or have the wrong shape with 400', async () => {
    const filters = ['nope', '[1]', '"x"', '1', '{"name":1}', '{"name":[1]}', '{"name":{"x":"yes"}}', '{"bogus":["x"]}', '{"dangling":["maybe"]}', '{"type":["odd"]}'];
    for (const f of filters) {
      for (const route of ['/networks', '/containers/json', '/events?until=1', '/networks/prune']) {
        const req = route === '/networks/prune' ? post(`${route}?filters=${encodeURIComponent(f)}`, '') : get(`${route}${route.includes('?') ? '&' : '?'}filters=${encodeURIComponent(f)}`);
        const r = await rawRequest(d.socket, req);
        // Docker ignores unknown keys on some routes (events); everything else is a 400.
        if (r.status === 200 && (route.startsWith('/events') || route === '/containers/json') && f.startsWith('{"') && !f.includes(':1') && !f.includes('[1]') && !f.includes('"yes"')) continue;
        assert.equal(r.status, 400, `${route} filters=${f}: ${r.text.slice(0, 300)}`);
        assert.ok(messageOf(r).length > 0);
      }
    }
    assert.equal((await d.api('GET', '/networks/hnet')).status, 200, 'prune with bad filters must remove nothing');
    await assertAlive('bad filters');
  });

  it('answers bodies of the wrong JSON type with 400 on every route that reads one, changing nothing', async () => {
    const notObjects = ['[]', '"x"', '1', 'true', '[{"Name":"x"}]'];
    const routes: Record<string, string[]> = {
      '/networks/create': ['{"Name":1}', '{"Name":"x","Labels":[1]}', '{"Name":"x","IPAM":"bad"}', '{"Name":"x","IPAM":{"Config":{}}}', '{"Name":"x","Options":{"a":1}}', '{"Name":"x","Internal":"yes"}'],
      '/networks/hnet/connect': ['{"Container":1}', '{"Container":{}}', '{"Container":"hsb","EndpointConfig":"no"}', '{"Container":"hsb","EndpointConfig":{"Aliases":"a"}}'],
      '/networks/hnet/disconnect': ['{"Container":1}', '{"Container":"hsb","Force":"yes"}'],
      '/cnm/v1/sandboxes': ['{"Name":1}', '{"Networks":"x"}', '{"Networks":[{"Network":7}]}', '{"Labels":[1]}', '{"Dns":"1.1.1.1"}'],
      '/cnm/v1/services': ['{"Name":1,"Network":"hnet"}', '{"Name":"s","Network":7}', '{"Name":"s","Network":"hnet","Ports":"80"}'],
    };
    const before = (await d.api('GET', '/networks')).json<unknown[]>().length;
    for (const [route, wrong] of Object.entries(routes)) {
      for (const body of [...notObjects, ...wrong]) {
        const r = await rawRequest(d.socket, post(route, body));
        assert.ok(r.status >= 400 && r.status < 500, `${route} ${body}: ${r.text.slice(0, 300)}`);
        assert.ok(messageOf(r).length > 0);
      }
    }
    assert.equal((await d.api('GET', '/networks')).json<unknown[]>().length, before);
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes')).json<unknown[]>().length, 1);
    await assertAlive('wrong body types');
  });

  it('evaluates filter patterns in linear time, with Go semantics (a backtracking pattern used to stall the daemon)', async () => {
    const id: string = (await d.api('GET', '/networks/hnet')).json().Id;
    const list = async (filters: unknown) => {
      const r = await rawRequest(d.socket, get(`/networks?filters=${encodeURIComponent(JSON.stringify(filters))}`));
      assert.equal(r.status, 200, r.text.slice(0, 300) || 'no answer: the daemon stalled');
      return (JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as Array<{ Name: string }>).map((n) => n.Name).sort();
    };
    assert.deepEqual(await list({ id: { '^(?:[0-9a-f]|[0-9a-f])*z': true } }), []);
    assert.deepEqual(await list({ name: { '^(?:[a-z]|[a-z])*[0-9]$': true } }), []);
    await assertAlive('hostile patterns');
    // The same patterns' non-hostile cousins match: the probe works.
    assert.deepEqual(await list({ id: { '^(?:[0-9a-f]|[0-9a-f])*$': true } }).then((l) => l.includes('hnet')), true);
    assert.deepEqual(await list({ id: { [id.slice(10, 20)]: true } }), ['hnet']);
    assert.deepEqual(await list({ name: { 'hne.': true } }), ['hnet']);
    // Go's syntax: lookahead is no valid pattern there (never matches, as in Docker); JS would match.
    assert.deepEqual(await list({ name: { '(?=hnet)': true } }), []);
    // docker ps: patterns searched anywhere in the ID, names matched as "/NAME" and "NAME".
    const sbId: string = (await d.api('GET', '/cnm/v1/sandboxes/hsb')).json().Id;
    const ps = async (filters: unknown) =>
      (await d.api('GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify(filters))}`)).json<Array<{ Id: string }>>().map((c) => c.Id);
    assert.deepEqual(await ps({ name: { '^/hsb$': true } }), [sbId]);
    assert.deepEqual(await ps({ id: { [sbId.slice(30, 40)]: true } }), [sbId]);
    assert.deepEqual(await ps({ id: { '^(?:[0-9a-f]|[0-9a-f])*z': true } }), []);
    // A pattern too costly to compile is refused at once.
    const big = await rawRequest(d.socket, get(`/networks?filters=${encodeURIComponent(JSON.stringify({ name: { ['\\pL{1000}'.repeat(200)]: true } }))}`));
    assert.equal(big.status, 400, big.text.slice(0, 300));
    assert.match(messageOf(big), /too complex/);
    await assertAlive('a huge pattern');
  });
});
