/**
 * Daemon-grade HTTP limits on a real daemon: a client that sends its headers too slowly is answered
 * 408 and cut, connections beyond --max-connections are closed at once, changes beyond
 * --max-queued-changes are refused with 503 (never queued without end), and an /events reader that
 * never reads is disconnected instead of being buffered for without bound.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { request, Agent } from 'node:http';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { messageOf, rawRequest } from '../helpers/raw-http.js';

const PING = 'GET /_ping HTTP/1.1\r\nHost: cnm\r\n\r\n';

/** A keep-alive connection that has been served once (so the server surely accepted and counts it). */
function servedConnection(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socketPath);
    let text = '';
    s.on('data', (c) => {
      text += c;
      if (text.includes('\r\n\r\nOK')) resolve(s);
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed before answering: ${JSON.stringify(text)}`)));
    s.write(PING);
  });
}

// Each test has a daemon of its own, and the first one mostly waits (30 s for the request timeout): they run at once.
describe('HTTP limits on a real daemon', { concurrency: true }, () => {
  const daemons: TestDaemon[] = [];
  after(async () => {
    for (const d of daemons) await d.cleanup();
  });

  it('answers a request whose headers or body never finish with 408 and closes it', async () => {
    const d = await startTestDaemon();
    daemons.push(d);
    // Control: the same bytes, finished, are answered.
    assert.equal((await rawRequest(d.socket, 'GET /_ping HTTP/1.1\r\nHost: cnm\r\nConnection: close\r\n\r\n')).status, 200);
    // node's defaults (60 s, checked every 30 s) would leave it open past the 30 s we wait. A body that
    // never finishes is cut by the request timeout (30 s), as a client error, not a daemon error.
    const [slow, slowBody] = await Promise.all([
      rawRequest(d.socket, 'GET /_ping HTTP/1.1\r\nHost: cnm\r\nX-Trickle: a', 30_000),
      rawRequest(d.socket, 'POST /networks/create HTTP/1.1\r\nHost: cnm\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"Na', 60_000),
    ]);
    assert.equal(slow.closed, true, 'the server never closed the connection');
    assert.equal(slow.status, 408, slow.text);
    assert.match(messageOf(slow), /timeout/);
    assert.equal(slowBody.closed, true, 'the server never closed the connection with the unfinished body');
    assert.equal(slowBody.status, 408, slowBody.text);
    assert.equal((await d.api('GET', '/_ping')).status, 200);
    assert.doesNotMatch(d.logs(), /"level":"error"/);
  });

  it('closes connections beyond --max-connections at once and serves again when they go', async () => {
    const d = await startTestDaemon(['--max-connections', '16']);
    daemons.push(d);
    const held = await Promise.all(Array.from({ length: 16 }, () => servedConnection(d.socket)));
    try {
      const extra = await rawRequest(d.socket, PING, 20_000);
      assert.equal(extra.closed, true, 'a connection over the cap was kept open');
      assert.equal(extra.status, 0, `a connection over the cap was served: ${extra.text}`);
      for (let i = 0; i < 100 && !/too many open connections/.test(d.logs()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(d.logs(), /too many open connections/);
    } finally {
      for (const s of held) s.destroy();
    }
    // Once they are gone, the daemon serves again (retry: closes reach the server asynchronously).
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await rawRequest(d.socket, 'GET /_ping HTTP/1.1\r\nHost: cnm\r\nConnection: close\r\n\r\n')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
  });

  it('refuses changes beyond --max-queued-changes with 503 and applies the others', async () => {
    const d = await startTestDaemon(['--max-queued-changes', '2']);
    daemons.push(d);
    // Freeze the daemon so that the requests all arrive before it applies the first one.
    process.kill(d.pid(), 'SIGSTOP');
    const agent = new Agent({ maxSockets: 64 });
    const results: Promise<{ status: number; body: string }>[] = [];
    try {
      for (let i = 0; i < 24; i++) {
        results.push(
          new Promise((resolve, reject) => {
            const body = JSON.stringify({ Name: `q${i}` });
            const req = request(
              { socketPath: d.socket, method: 'POST', path: '/cnm/v1/sandboxes', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
              (res) => {
                let text = '';
                res.on('data', (c) => (text += c));
                res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
              },
            );
            req.on('error', reject);
            req.end(body);
          }),
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      process.kill(d.pid(), 'SIGCONT');
    }
    const answers = await Promise.all(results);
    agent.destroy();
    const created = answers.filter((a) => a.status === 201).length;
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(created + refused.length, answers.length, JSON.stringify(answers.filter((a) => a.status !== 201 && a.status !== 503)));
    assert.ok(refused.length > 0, 'no change was refused: the queue is unbounded');
    assert.ok(created > 0, 'nothing was created');
    assert.match(JSON.parse(refused[0]!.body).message, /busy: 2 changes are already waiting/);
    // Refused requests changed nothing; the others are all there.
    const names = (await d.api('GET', '/cnm/v1/sandboxes')).json<Array<{ Name: string }>>().filter((n) => n.Name.startsWith('q'));
    assert.equal(names.length, created);
  });

  it('disconnects an /events reader that never reads', async () => {
    const d = await startTestDaemon();
    daemons.push(d);
    const reader = createConnection(d.socket);
    reader.pause(); // never read: everything piles up in its socket and then in the daemon
    reader.on('error', () => undefined);
    reader.write('GET /events HTTP/1.1\r\nHost: cnm\r\n\r\n');
    // A control reader that does read stays connected and sees the events.
    let seen = 0;
    const control = createConnection(d.socket);
    control.on('data', (c: Buffer) => (seen += c.toString().split('"Action"').length - 1));
    control.write('GET /events HTTP/1.1\r\nHost: cnm\r\n\r\n');
    await new Promise((r) => setTimeout(r, 200));

    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const call = (method: string, path: string, body?: unknown) =>
      new Promise<number>((resolve, reject) => {
        const data = body === undefined ? undefined : JSON.stringify(body);
        const req = request({ socketPath: d.socket, method, path, agent, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(data);
      });
    assert.equal(await call('POST', '/cnm/v1/sandboxes', { Name: 'ev' }), 201);
    assert.equal(await call('POST', '/networks/create', { Name: 'evnet' }), 201);
    // Each connect / disconnect is one event of about 300 bytes: 3,000 are well past the socket's send
    // buffer (about 208 KiB) and the daemon's 256 KiB bound.
    const cut = () => /events reader does not keep up/.test(d.logs());
    let rounds = 0;
    for (; rounds < 1500 && !cut(); rounds++) {
      assert.equal(await call('POST', '/networks/evnet/connect', { Container: 'ev' }), 200);
      assert.equal(await call('POST', '/networks/evnet/disconnect', { Container: 'ev' }), 200);
    }
    agent.destroy();
    assert.ok(cut(), `the daemon kept buffering for a non-reading /events client through ${rounds * 2} events`);
    // The reader, reading at last, finds its stream cut short: what was sent, then the end.
    const closed = new Promise<void>((resolve) => reader.on('close', () => resolve()));
    reader.resume();
    await closed;
    for (let i = 0; i < 100 && seen < rounds * 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(seen >= rounds * 2, `the reading client saw ${seen} of ${rounds * 2} events`);
    assert.equal(control.destroyed, false);
    control.destroy();
    reader.destroy();
  });
});
