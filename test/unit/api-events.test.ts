/** GET /events against the real controller (test/helpers/real-api.ts): streaming, filters, since/until, and shutdown. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest } from 'node:http';
import { startRealApi, type RealApi } from '../helpers/real-api.js';

interface Stream {
  status: Promise<number>;
  contentType: Promise<string>;
  lines: string[];
  /** Resolves when `n` events have arrived. */
  waitFor(n: number): Promise<void>;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  close(): void;
}

function openStream(socketPath: string, path: string): Stream {
  const lines: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let req: ClientRequest;
  let resolveStatus!: (n: number) => void;
  let resolveType!: (s: string) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const contentType = new Promise<string>((r) => (resolveType = r));
  const ended = new Promise<void>((resolveEnd) => {
    req = request({ socketPath, path }, (res) => {
      resolveStatus(res.statusCode ?? 0);
      resolveType(String(res.headers['content-type']));
      let buffered = '';
      res.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          lines.push(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
        for (const w of waiters.filter((w) => lines.length >= w.n)) w.resolve();
      });
      res.on('end', () => resolveEnd());
      res.on('error', () => resolveEnd());
    });
    req.on('error', () => resolveEnd());
    req.end();
  });
  return {
    status,
    contentType,
    lines,
    waitFor: (n) => (lines.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    ended,
    close: () => req.destroy(),
  };
}

const enc = (f: object) => encodeURIComponent(JSON.stringify(f));

describe('API: /events', () => {
  let api: RealApi;
  /** Before this API's first event (whole seconds: `until` below is one). */
  let beforeAnyEvent = 0;
  before(async () => {
    beforeAnyEvent = Math.floor(Date.now() / 1000) - 1;
    api = await startRealApi();
  });
  after(async () => api?.close());

  it('streams network events as newline-delimited Docker messages', async () => {
    const s = openStream(api.socketPath, `/v1.50/events?filters=${enc({ type: ['network'] })}`);
    assert.equal(await s.status, 200);
    assert.equal(await s.contentType, 'application/json');
    await api.request('POST', '/networks/create', { Name: 'ev1' });
    await api.request('POST', '/cnm/v1/sandboxes', { Name: 'evsb', Networks: [{ Network: 'ev1' }] });
    await s.waitFor(2);
    s.close();
    const [created, connected] = s.lines.map((l) => JSON.parse(l));
    const id = api.controller.getNetwork('ev1').network.id;
    assert.deepEqual(Object.keys(created), ['Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
    assert.deepEqual(
      { Type: created.Type, Action: created.Action, Actor: created.Actor, scope: created.scope },
      { Type: 'network', Action: 'create', Actor: { ID: id, Attributes: { name: 'ev1', type: 'bridge' } }, scope: 'local' },
    );
    assert.equal(connected.Action, 'connect');
    assert.equal(connected.Actor.Attributes.container, api.controller.getSandbox('evsb').sandbox.id);
    // timeNano is written exactly (beyond 2^53) and agrees with time.
    const nanos = BigInt(/"timeNano":(\d+)/.exec(s.lines[0]!)![1]!);
    assert.equal(nanos / 1_000_000_000n, BigInt(created.time));
  });

  it('filters by event and network, and shows sandbox events as container events', async () => {
    const byAction = openStream(api.socketPath, `/events?filters=${enc({ event: { destroy: true }, network: { ev2: true } })}`);
    const containers = openStream(api.socketPath, `/events?filters=${enc({ type: { container: true } })}`);
    await byAction.status;
    await containers.status;
    await api.request('POST', '/networks/create', { Name: 'ev2' });
    await api.request('POST', '/networks/create', { Name: 'ev3' });
    await api.request('DELETE', '/networks/ev3');
    await api.request('DELETE', '/networks/ev2');
    await api.request('POST', '/cnm/v1/sandboxes', { Name: 'evc', Networks: [{ Network: 'none' }] });
    await byAction.waitFor(1);
    await containers.waitFor(1);
    byAction.close();
    containers.close();
    const only = JSON.parse(byAction.lines[0]!);
    assert.deepEqual([only.Action, only.Actor.Attributes.name], ['destroy', 'ev2']);
    assert.equal(byAction.lines.length, 1);
    const c = JSON.parse(containers.lines[0]!);
    assert.deepEqual([c.Type, c.Action, c.status, c.Actor.Attributes.name], ['container', 'create', 'create', 'evc']);
    assert.equal(c.id, c.Actor.ID);
  });

  it('replays past events with since, and ends at until', async () => {
    const t0 = Date.now() / 1000 - 1;
    await api.request('POST', '/networks/create', { Name: 'past1' });
    const s = openStream(api.socketPath, `/events?since=${t0.toFixed(3)}&until=${(Date.now() / 1000 + 0.3).toFixed(3)}&filters=${enc({ network: ['past1'] })}`);
    await s.ended; // the server closes the stream at `until`
    assert.deepEqual(s.lines.map((l) => JSON.parse(l).Action), ['create']);
    // Until a time before this API's first event: nothing. (It used to be floor(t0): on a loaded machine
    // the earlier tests' events are more than a second old by now and were replayed.)
    const onlyPast = openStream(api.socketPath, `/events?since=0&until=${beforeAnyEvent}`);
    await onlyPast.ended;
    assert.deepEqual(onlyPast.lines, []);
  });

  it('refuses bad since/until values', async () => {
    const bad = await api.request('GET', '/events?since=yesterday');
    assert.equal(bad.status, 400);
    assert.match(bad.json().message, /invalid value for 'since'/);
    const reversed = await api.request('GET', '/events?since=200&until=100');
    assert.equal(reversed.status, 400);
    assert.match(reversed.json().message, /cannot be after/);
    assert.equal((await api.request('GET', '/events?filters=%7Bbad')).status, 400);
  });

  it('ends open streams when the server closes, and counts listeners in /info', async () => {
    const other = await startRealApi();
    const s = openStream(other.socketPath, '/events');
    await s.status;
    assert.equal((await other.request('GET', '/info')).json().NEventsListener, 1);
    await other.close();
    await s.ended;
    assert.deepEqual(s.lines, []);
  });
});
