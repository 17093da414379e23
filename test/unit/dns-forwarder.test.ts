/**
 * The forwarder against fake upstream servers on 127.0.0.1 in the test's own namespace (loopback only).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { parseQuery, Rcode, RecordType, type ParsedQuery } from '../../src/dns/codec.js';
import { FakeUpstream } from '../../src/dns/fake-upstream.js';
import { Forwarder, InFlightBudget, type ForwardTarget } from '../../src/dns/forwarder.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';
import type { UpstreamServer } from '../../src/dns/resolv-conf.js';
import { CurrentNamespaceSockets, UpstreamPool } from '../../src/dns/upstream.js';
import { silentLogger } from '../../src/util/log.js';

const RECORDS = new Map([['svc.example', ['192.0.2.10', '192.0.2.11']]]);

function server(port: number): UpstreamServer {
  return { address: '127.0.0.1', port, family: 4, from: 'daemon' };
}

function query(id: number, name: string): { raw: Buffer; query: ParsedQuery } {
  const raw = encodeQuery(id, name, RecordType.A);
  const result = parseQuery(raw);
  assert.ok(result?.ok);
  return { raw, query: result.query };
}

/** A UDP port on 127.0.0.1 with nobody behind it: the kernel answers ICMP port unreachable. */
async function deadPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('Forwarder', () => {
  const good = new FakeUpstream(RECORDS);
  const other = new FakeUpstream(new Map([['svc.example', ['198.51.100.1']]]));
  let goodPort = 0;
  let otherPort = 0;
  const pool = new UpstreamPool(new CurrentNamespaceSockets());

  before(async () => {
    goodPort = (await good.start({ address: '127.0.0.1' })).port;
    otherPort = (await other.start({ address: '127.0.0.1' })).port;
  });

  after(async () => {
    pool.close();
    await good.stop();
    await other.stop();
  });

  function forwarder(timeoutMs = 2000, maxInFlight = 1024): Forwarder {
    return new Forwarder({ timeoutMs, maxInFlight }, silentLogger);
  }

  function targets(...ports: number[]): ForwardTarget[] {
    return ports.map((port) => ({ server: server(port), pool }));
  }

  async function ask(f: Forwarder, ports: number[], name = 'svc.example', id = 4242, overTcp = false, budget = new InFlightBudget(1024)) {
    const q = query(id, name);
    return decodeMessage(await f.forward({ ...q, targets: targets(...ports), overTcp, budget }));
  }

  it('forwards and restores the client ID', async () => {
    good.mode = 'answer';
    const m = await ask(forwarder(), [goodPort]);
    assert.equal(m.id, 4242);
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.deepEqual(m.answers.map((a) => a.data), ['192.0.2.10', '192.0.2.11']);
    const nx = await ask(forwarder(), [goodPort], 'nothing.example');
    assert.equal(nx.rcode, Rcode.NXDOMAIN, 'upstream NXDOMAIN passes through');
  });

  it('answers many concurrent queries, each with its own answer', async () => {
    good.mode = 'answer';
    // What this checks is the pairing of answers and queries, not speed: 300 queries and the fake upstream
    // share this one process, and on a loaded machine it may not run for longer than the 2 s per-query
    // budget (every query then timed out into SERVFAIL). The budget is not what is measured here.
    const f = forwarder(60_000);
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => ask(f, [goodPort], i % 2 ? 'svc.example' : `n${i}.example`, i)));
    results.forEach((m, i) => {
      assert.equal(m.id, i);
      assert.equal(m.questions[0]?.name, i % 2 ? 'svc.example' : `n${i}.example`);
      assert.equal(m.rcode, i % 2 ? Rcode.NOERROR : Rcode.NXDOMAIN);
    });
  });

  it('fails over from an ICMP-unreachable upstream to the next one (the 60 s timeout never runs out)', { timeout: 10_000 }, async () => {
    good.mode = 'answer';
    // A 60 s budget: only the ICMP error can make this finish within the test's 10 s.
    const m = await ask(forwarder(60_000), [await deadPort(), goodPort]);
    assert.equal(m.rcode, Rcode.NOERROR);
    assert.deepEqual(m.answers.map((a) => a.data), ['192.0.2.10', '192.0.2.11']);
  });

  it('answers SERVFAIL when every upstream is unreachable', { timeout: 10_000 }, async () => {
    const m = await ask(forwarder(60_000), [await deadPort(), await deadPort()]);
    assert.equal(m.rcode, Rcode.SERVFAIL);
    assert.equal(m.id, 4242);
  });

  it('answers SERVFAIL when every upstream stays silent past the forwarder timeout', { timeout: 10_000 }, async () => {
    good.mode = 'silent';
    other.mode = 'silent';
    try {
      const m = await ask(forwarder(300), [goodPort, otherPort]);
      assert.equal(m.rcode, Rcode.SERVFAIL);
    } finally {
      good.mode = 'answer';
      other.mode = 'answer';
    }
  });

  it('skips an upstream answering SERVFAIL and uses the next', async () => {
    good.mode = 'servfail';
    try {
      const m = await ask(forwarder(), [goodPort, otherPort]);
      assert.equal(m.rcode, Rcode.NOERROR);
      assert.deepEqual(m.answers.map((a) => a.data), ['198.51.100.1']);
    } finally {
      good.mode = 'answer';
    }
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    good.mode = 'truncate-udp';
    good.seen.length = 0;
    try {
      const m = await ask(forwarder(), [goodPort]);
      assert.equal(m.truncated, false);
      assert.deepEqual(m.answers.map((a) => a.data), ['192.0.2.10', '192.0.2.11']);
      assert.deepEqual(good.seen, ['svc.example/1/udp', 'svc.example/1/tcp']);
    } finally {
      good.mode = 'answer';
    }
  });

  it('forwards TCP clients over TCP', async () => {
    good.seen.length = 0;
    const m = await ask(forwarder(), [goodPort], 'svc.example', 9, true);
    assert.equal(m.id, 9);
    assert.equal(m.answers.length, 2);
    assert.deepEqual(good.seen, ['svc.example/1/tcp']);
  });

  it('answers SERVFAIL beyond the in-flight bound without waiting for the queries in flight, and frees the slots afterwards', { timeout: 10_000 }, async () => {
    good.mode = 'silent';
    const f = forwarder(1500, 2);
    const budget = new InFlightBudget(2);
    let slowDone = 0;
    const slow = [1, 2].map((id) => ask(f, [goodPort], 'svc.example', id, false, budget).then((m) => (slowDone++, m)));
    const third = await ask(f, [goodPort], 'svc.example', 3, false, budget);
    assert.equal(third.rcode, Rcode.SERVFAIL);
    assert.equal(slowDone, 0, 'the over-limit query did not wait for the others');
    assert.equal(budget.inFlight, 2);
    good.mode = 'answer';
    await Promise.all(slow);
    assert.equal(budget.inFlight, 0);
    assert.equal((await ask(f, [goodPort], 'svc.example', 4, false, budget)).rcode, Rcode.NOERROR);
    assert.equal(f.stats().overLimit, 1);
  });

  it('bounds the queries in flight over all sandboxes too (each holds a socket)', { timeout: 10_000 }, async () => {
    good.mode = 'silent';
    const f = new Forwarder({ timeoutMs: 1500, maxInFlight: 1024, maxInFlightTotal: 2 }, silentLogger);
    const [a, b, c] = [new InFlightBudget(1024), new InFlightBudget(1024), new InFlightBudget(1024)];
    const seen = good.seen.length;
    const slow = [ask(f, [goodPort], 'svc.example', 1, false, a), ask(f, [goodPort], 'svc.example', 2, false, b)];
    const third = await ask(f, [goodPort], 'svc.example', 3, false, c);
    assert.equal(third.rcode, Rcode.SERVFAIL, "a third sandbox's query is refused while two are in flight");
    assert.equal(c.inFlight, 0, 'and does not keep its own slot');
    assert.equal(f.stats().overLimit, 1);
    good.mode = 'answer';
    await Promise.all(slow);
    assert.equal(good.seen.length - seen, 2, 'only two queries went upstream');
    assert.equal((await ask(f, [goodPort], 'svc.example', 4, false, c)).rcode, Rcode.NOERROR);
  });

  it('answers SERVFAIL without upstreams, and from a closed pool', async () => {
    assert.equal((await ask(forwarder(), [])).rcode, Rcode.SERVFAIL);
    const closed = new UpstreamPool(new CurrentNamespaceSockets());
    closed.close();
    const q = query(1, 'svc.example');
    const m = decodeMessage(
      await forwarder().forward({ ...q, targets: [{ server: server(goodPort), pool: closed }], overTcp: false, budget: new InFlightBudget(1) }),
    );
    assert.equal(m.rcode, Rcode.SERVFAIL);
  });
});
